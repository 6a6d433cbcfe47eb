"""Logical-to-physical slot tables of the LaCache classes, as linked lists: O(B) per compaction.

In streaming decode every layer of one class ``c = i % (R + 1)`` keeps the same logical list, so
one table per class serves all its layers; layer ``i`` stores token ``t`` at the physical row its
class gave ``t``. A table is a singly linked list over the physical rows: ``links[s]`` is the row
after row ``s`` in logical order, and a sentinel node (index ``rows``) stands before logical 0.

Why a linked list: a compaction removes ``R`` entries of the window ``[p, p + B)`` and every
later entry moves down ``R`` places. In a flat table that is ``O(C)`` moves; in a list it is a
walk of ``B + 1`` links from the node before the window and two link writes. The node before the
window is known without searching: it is the last kept node of the previous compaction (the
cursor only moves by ``A``), or, after a start-over, the node of logical ``S0 - 1``, which never
moves since sinks are never dropped. Appends write one link at the tail. The price is that a
read-out chases links, one per cycle: the link memories are read asynchronously (they map to
distributed RAM) at a register holding the current node, so a chase step is register ->
LUT RAM -> register, never a block-RAM output feeding a block-RAM address.

Physical rows are allocated from a counter until all ``rows`` are used, then from a free queue of
``R`` entries per class: a compaction happens exactly every ``R`` tokens once the cache is full,
drops ``R`` rows per class and the next ``R`` tokens take them, so the queue is empty at every
compaction and each dropped row can be written to queue position "how many were dropped before
it", a constant per class and walk step.
"""

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .ladder import check_lacache_config


__all__ = ["SlotTable"]


class _State(enum.Enum):
    # A plain state register with if/elif decoding rather than ``m.FSM``, whose ``casez`` over
    # the state Verilator reports as incomplete.
    IDLE = 0
    WALK = 1
    LINK = 2
    ALLOC = 3
    READ_FIRST = 4
    READ = 5


class SlotTable(wiring.Component):
    """Per-class linked slot tables with their row allocators, compaction and read-out walker.

    Parameters
    ----------
    config : KVConfig
        A LaCache configuration.

    Interface attributes
    --------------------
    pending : ``Out(data.ArrayLayout(unsigned(slot_bits), classes))``
        The physical row the next token takes in each class: write layer ``i``'s K/V there, at
        ``pending[i % (R + 1)]``. Register; changes only while ``busy``.
    commit : ``In(1)``
        Pulse (while not ``busy``) to append the pending token to every list and, if ``drop``,
        compact. ``drop``, ``startover`` and ``sink`` are sampled in the same cycle.
    drop, startover : ``In(1)``
        The plan of :class:`~hw.kv.ladder.LadderIndexer`: remove ``R`` entries of the window at
        the cursor (or at ``S0`` on a start-over) in every class.
    sink : ``In(1)``
        The appended token is logical ``S0 - 1``: it becomes the anchor of start-overs.
    walk : ``In(stream.Signature(walk layout))``
        A read-out request ``{cls, count, length}`` (taken only while not ``busy``): stream
        ``count`` rows of class ``cls`` in logical order; ``length`` is the committed list length
        and a ``count`` of ``length + 1`` appends the pending row.
    slots : ``Out(stream.Signature({slot, pos, last}))``
        The rows of a walk in logical order, with their logical index ``pos`` (the RoPE
        position of the key), the last flagged. The first is offered two cycles after the
        request, then one per cycle while ``slots.ready`` is high; ``slot`` comes from a
        register through a class multiplexer.
    busy : ``Out(1)``
        High while a commit or a walk is in progress. A commit without a drop takes 2 cycles,
        one with a drop ``B + 4``, whatever the budget.

    Attributes
    ----------
    links : list of Memory
        The per-class link memories (``rows + 1`` entries, the last the sentinel), for
        testbenches that inspect the lists.
    """

    def __init__(self, *, config):
        self._config = cfg = check_lacache_config("SlotTable", config)
        rows = cfg.rows_per_layer
        node = unsigned(rows.bit_length())
        self.links = [Memory(shape=node, depth=rows + 1, init=[]) for _ in range(cfg.classes)]
        super().__init__({
            "pending": Out(data.ArrayLayout(unsigned(cfg.slot_bits), cfg.classes)),
            "commit": In(1),
            "drop": In(1),
            "startover": In(1),
            "sink": In(1),
            "walk": In(stream.Signature(data.StructLayout({
                "cls": range(cfg.classes),
                "count": range(rows + 1),
                "length": range(rows + 1),
            }))),
            "slots": Out(stream.Signature(data.StructLayout({
                "slot": unsigned(cfg.slot_bits),
                "pos": range(rows),
                "last": 1,
            }))),
            "busy": Out(1),
        })

    @property
    def config(self):
        """The :class:`KVConfig` the table is built from."""
        return self._config

    @property
    def sentinel(self):
        """Index of the node before logical 0 in every link memory."""
        return self._config.rows_per_layer

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        A, B, R, rows = cfg.A, cfg.B, cfg.R, cfg.rows_per_layer
        node = unsigned(rows.bit_length())

        fresh = Signal(range(rows + 1), init=1)     # pending starts at row 0 out of reset
        qread = Signal(range(max(2, R)))
        step = Signal(range(B + 1))                 # window node being read in WALK
        walk_req = Signal.like(self.walk.payload)
        walk_pos = Signal(range(rows + 1))

        class_ports = []
        for c, links in enumerate(self.links):
            m.submodules[f"links{c}"] = links
            # At least 2 deep: a 1-deep memory has a 0-bit address, which Verilog cannot declare.
            m.submodules[f"free{c}"] = free = Memory(shape=unsigned(cfg.slot_bits),
                                                     depth=max(2, R), init=[])
            class_ports.append((links.read_port(domain="comb"), links.write_port(),
                                free.read_port(), free.write_port()))

        # The state of each class: its tail, its cursor node (logical cursor - 1), its start-over
        # anchor (logical S0 - 1; the sentinel when S0 = 0), and in a walk the node before the
        # window and the first and last node it keeps.
        regs = [{name: Signal(node, init=self.sentinel, name=f"{name}{c}")
                 for name in ("tail", "cur", "anchor", "prev", "first", "last", "at")}
                for c in range(cfg.classes)]
        # ``at`` is the node a walk stands on; the link memory is read asynchronously at it, so
        # that a chase moves one node per cycle from a register, with no memory output feeding
        # a memory address in the same cycle.
        for c, (rd, _, _, _) in enumerate(class_ports):
            m.d.comb += rd.addr.eq(regs[c]["at"])

        state = Signal(_State)
        with m.If(state == _State.IDLE):
            m.d.comb += self.walk.ready.eq(~self.commit)
            with m.If(self.commit):
                for c, (rd, wr, _, _) in enumerate(class_ports):
                    r, pend = regs[c], self.pending[c]
                    m.d.comb += [wr.addr.eq(r["tail"]), wr.data.eq(pend), wr.en.eq(1)]
                    m.d.sync += r["tail"].eq(pend)
                    with m.If(self.sink):
                        m.d.sync += [r["anchor"].eq(pend), r["cur"].eq(pend)]
                    prev = Mux(self.startover, r["anchor"], r["cur"])
                    m.d.sync += [r["prev"].eq(prev), r["at"].eq(prev)]
                m.d.sync += step.eq(0)
                with m.If(self.drop):
                    m.d.sync += qread.eq(0)
                    m.d.sync += state.eq(_State.WALK)
                with m.Else():
                    m.d.sync += state.eq(_State.ALLOC)
            with m.Elif(self.walk.valid):
                m.d.sync += [walk_req.eq(self.walk.payload), walk_pos.eq(0)]
                for c in range(cfg.classes):
                    m.d.sync += regs[c]["at"].eq(self.sentinel)
                m.d.sync += state.eq(_State.READ_FIRST)

        with m.Elif(state == _State.WALK):
            # The read port shows window node ``step`` (w_step); chase on to the next one.
            m.d.sync += step.eq(step + 1)
            for c, (rd, wr, _, fw) in enumerate(class_ports):
                r = regs[c]
                m.d.sync += r["at"].eq(rd.data)
                for k in range(B + 1):
                    with m.If(step == k):
                        if k == c:
                            m.d.sync += r["first"].eq(rd.data)
                        if k == c + A - 1:
                            m.d.sync += [r["last"].eq(rd.data), r["cur"].eq(rd.data)]
                        if k == B:
                            m.d.comb += [wr.addr.eq(r["last"]), wr.data.eq(rd.data),
                                         wr.en.eq(1)]
                        elif not c <= k < c + A:
                            # Dropped: queue position = rows this class dropped before.
                            m.d.comb += [fw.addr.eq(min(k, c) + max(0, k - c - A)),
                                         fw.data.eq(rd.data), fw.en.eq(1)]
            with m.If(step == B):
                m.d.sync += state.eq(_State.LINK)

        with m.Elif(state == _State.LINK):
            for c, (_, wr, _, _) in enumerate(class_ports):
                m.d.comb += [wr.addr.eq(regs[c]["prev"]), wr.data.eq(regs[c]["first"]),
                             wr.en.eq(1)]
            m.d.sync += state.eq(_State.ALLOC)

        with m.Elif(state == _State.ALLOC):
            # The free queue's read port has shown ``free[qread]`` since the cycle after
            # qread last changed (at least two cycles ago) and after its last write.
            with m.If(fresh < rows):
                m.d.sync += fresh.eq(fresh + 1)
                for c in range(cfg.classes):
                    m.d.sync += self.pending[c].eq(fresh)
            with m.Else():
                m.d.sync += qread.eq(Mux(qread == R - 1, 0, qread + 1))
                for c, (_, _, fr, _) in enumerate(class_ports):
                    m.d.sync += self.pending[c].eq(fr.data)
            m.d.sync += state.eq(_State.IDLE)

        with m.Elif(state == _State.READ_FIRST):
            # Step from the sentinel onto logical 0, so that ``at`` holds the slot offered. (Not
            # in IDLE: the link address would then depend on the command decode.)
            for c, (rd, _, _, _) in enumerate(class_ports):
                m.d.sync += regs[c]["at"].eq(rd.data)
            m.d.sync += state.eq(_State.READ)

        with m.Elif(state == _State.READ):
            length, cls = walk_req.length, walk_req.cls
            at_of_class = Signal(node)
            with m.Switch(cls):
                for c in range(cfg.classes):
                    with m.Case(c):
                        m.d.comb += at_of_class.eq(regs[c]["at"])
            m.d.comb += [
                self.slots.valid.eq(1),
                self.slots.payload.slot.eq(Mux(walk_pos == length,
                                               self.pending[cls], at_of_class)),
                self.slots.payload.pos.eq(walk_pos),
                self.slots.payload.last.eq(walk_pos == walk_req.count - 1),
            ]
            with m.If(self.slots.ready):
                for c, (rd, _, _, _) in enumerate(class_ports):
                    m.d.sync += regs[c]["at"].eq(rd.data)
                m.d.sync += walk_pos.eq(walk_pos + 1)
                with m.If(self.slots.payload.last):
                    m.d.sync += state.eq(_State.IDLE)
        for _, _, fr, _ in class_ports:
            m.d.comb += fr.addr.eq(qread)
        m.d.comb += self.busy.eq(state != _State.IDLE)
        return m
