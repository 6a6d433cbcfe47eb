"""Logical-to-physical slot tables of the policy's classes, as linked lists: O(B) per compaction.

In streaming decode every layer of one class (``c = i % (R + 1)`` under LaCache; one class
under StreamingLLM) keeps the same logical list, so one table per class serves all its layers;
layer ``i`` stores token ``t`` at the physical row its class gave ``t``. A table is a singly
linked list over the physical rows: ``next[s]`` is the row after row ``s`` in logical order, and
a sentinel node (index ``rows``) stands before logical 0.

Why a linked list: a compaction removes ``R`` entries of the window ``[p, p + B)`` (see
:mod:`hw.kv.policy`) and every later entry moves down ``R`` places. In a flat table that is
``O(C)`` moves; in a list it is a walk of ``B + 2`` links from the node before the window and a
few link writes. The node before the window is known without searching: it is the last kept node
of the previous compaction (the cursor only moves by ``A``), or, on a start-over, the node of
logical ``S0 - 1``, which never moves since sinks are never dropped. Appends write at the tail.

The links live in block RAM with registered outputs (:class:`~hw.lib.block_ram.RegisteredRAM`,
2 cycles from address to data), so no cycle holds a memory read and the logic around it. A
read-out must still yield one row per cycle while each hop takes 2 cycles, so every list also
has skip links, ``skip[s]`` = the node two after ``s``: the even and the odd logical positions
are two chains followed in turn, each with one hop every 2 cycles. A pre-sentinel node (index
``rows + 1``) stands before the sentinel, so that ``skip[pre]`` is logical 0 and
``skip[sentinel]`` logical 1. A compaction rewrites the skip link of each of the two nodes
before the window and of each node it keeps, as the walk reveals the nodes two further on.

A prefill (:mod:`hw.kv.prefill`) appends many tokens, then compacts with walks of several
windows in a row: a walk of ``g`` groups takes ``B * g + 2`` hops from the node before its first
window, each window dropping ``R`` entries per class as above, the kept nodes of successive
windows linked as they come. Since LaCache's clean mode splits a prefill's compaction into
passes whose start-overs all have ``T = 1`` (:mod:`golden.lacache`), every walk is one of these
and the ``R + 1`` classes of streaming decode still hold every layer's list.

Physical rows are allocated from a counter until all ``rows`` are used, then from a free queue
per class, a ring of ``2**slot_bits`` entries that every dropped row enters: a compaction frees
``R`` rows per window, a prefill's many at once.
"""

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, enum, stream
from amaranth.lib.wiring import In, Out

from ..lib.block_ram import RegisteredRAM
from ..lib.component import ConfiguredComponent
from .policy import check_kv_config, compact_layout, compaction_window


__all__ = ["SlotTable", "commit_cycles", "walk_cycles"]


class _State(enum.Enum):
    # A plain state register with if/elif decoding rather than ``m.FSM``, whose ``casez`` over
    # the state Verilator reports as incomplete.
    IDLE = 0
    WALK = 1
    ALLOC = 2
    READ = 3


def commit_cycles(config, *, drop):
    """Cycles a commit keeps :class:`SlotTable` busy, from the ``commit`` pulse until it can
    take the next: 2, or ``2 * B + 8`` with a drop (a walk of ``B + 2`` hops of 2 cycles)."""
    return walk_cycles(config, 1) if drop else 2


def walk_cycles(config, groups):
    """Cycles a walk of ``groups`` windows keeps :class:`SlotTable` busy, from the ``commit``
    or ``compact`` pulse: ``2 * (B * groups + 2)`` for the hops and 4 more."""
    return 2 * (compaction_window(config).B * groups + 2) + 4


class SlotTable(ConfiguredComponent):
    """Per-class linked slot tables with their row allocators, compaction and read-out walker.

    Parameters
    ----------
    config : KVConfig
        A LaCache or StreamingLLM configuration.

    Interface attributes
    --------------------
    pending : ``Out(data.ArrayLayout(unsigned(slot_bits), classes))``
        The physical row the next token takes in each class: write layer ``i``'s K/V there, at
        ``pending[i % classes]``. Register; changes only while ``busy``.
    commit : ``In(1)``
        Pulse (while not ``busy``) to append the pending token to every list and, if ``drop``,
        compact, then allocate the next pending row. ``drop``, ``startover`` and ``sink`` are
        sampled in the same cycle. A ``commit``, ``append`` or ``alloc`` that allocates comes no
        earlier than the second cycle after the last allocation ended (``busy`` fell): the free
        queue's read port needs 2 cycles for its next entry, and the engine's command decode
        takes them.
    append : ``In(1)``
        Pulse (while not ``busy``) to append the pending token to every list without compacting
        (``sink`` sampled as with ``commit``), then allocate the next pending row unless
        ``hold``: a prefill's last token is appended held, compacted with ``compact``, and its
        successor's row allocated with ``alloc`` once the compaction has freed rows.
    hold : ``In(1)``
        Sampled with ``append``.
    compact : ``In(stream.Signature({startover, groups}))``
        A walk (taken while not ``busy`` and no ``commit``, ``append`` or ``alloc`` is pulsed):
        remove ``R`` entries per class from each of ``groups`` consecutive windows from the
        cursor (or from ``S0`` if ``startover``); :func:`walk_cycles`.
    alloc : ``In(1)``
        Pulse (while not ``busy``) to allocate the next pending row; 2 cycles.
    drop, startover : ``In(1)``
        The plan of the indexer: remove ``R`` entries of the window at the cursor (or at ``S0``
        on a start-over) in every class.
    sink : ``In(1)``
        The appended token is logical ``S0 - 1``: it becomes the anchor of start-overs.
    walk : ``In(stream.Signature(walk layout))``
        A read-out request ``{cls, length, pending}`` (taken only while not ``busy``): yield the
        ``length`` rows of class ``cls``'s committed list in logical order, then, if
        ``pending``, the pending row; at least one row in all.
    credit : ``In(1)``
        The consumer of ``slots`` has room for one more slot. During a read-out, each cycle with
        ``credit`` high (and ``want`` high) starts the lookup of the next slot, which appears on
        ``slots`` exactly 2 cycles later and must be taken then.
    want : ``Out(1)``
        A read-out has slots left to look up: a cycle with ``want`` and ``credit`` high uses
        the credit.
    slots : ``Out({valid, slot, pos, last})``
        The rows of a read-out in logical order, with their logical index ``pos`` (the RoPE
        position of the key), the last flagged; one per cycle while ``credit`` stays high, the
        first 3 cycles after the request is taken. Not a stream: there is no ``ready``, the
        credits are the flow control.
    busy : ``Out(1)``
        High while a commit, append, walk, allocation or read-out is in progress
        (:func:`commit_cycles`): exactly while the state is not idle, kept as a register of its
        own.

    Attributes
    ----------
    links, skips : list of RegisteredRAM
        Per class, the ``next`` and ``skip`` link memories (``rows + 2`` entries: the rows, the
        sentinel, the pre-sentinel), for testbenches that inspect the lists.
    free : list of RegisteredRAM
        Per class, the free queue's ring.
    """

    def __init__(self, *, config):
        cfg = check_kv_config("SlotTable", config)
        rows = cfg.rows_per_layer
        width = (rows + 1).bit_length()
        self.links = [RegisteredRAM(width=width, depth=rows + 2) for _ in range(cfg.classes)]
        self.skips = [RegisteredRAM(width=width, depth=rows + 2) for _ in range(cfg.classes)]
        self.free = [RegisteredRAM(width=cfg.slot_bits, depth=1 << cfg.slot_bits)
                     for _ in range(cfg.classes)]
        super().__init__(config, {
            "pending": Out(data.ArrayLayout(unsigned(cfg.slot_bits), cfg.classes)),
            "commit": In(1),
            "drop": In(1),
            "startover": In(1),
            "sink": In(1),
            "append": In(1),
            "hold": In(1),
            "compact": In(stream.Signature(compact_layout(cfg))),
            "alloc": In(1),
            "walk": In(stream.Signature(data.StructLayout({
                "cls": range(cfg.classes),
                "length": range(rows + 1),
                "pending": 1,
            }))),
            "credit": In(1),
            "want": Out(1),
            "slots": Out(data.StructLayout({
                "valid": 1,
                "slot": unsigned(cfg.slot_bits),
                "pos": range(rows),
                "last": 1,
            })),
            "busy": Out(1),
        })


    @property
    def sentinel(self):
        """Index of the node before logical 0 in every link memory."""
        return self._config.rows_per_layer

    @property
    def pre_sentinel(self):
        """Index of the node before the sentinel: its skip link is logical 0."""
        return self._config.rows_per_layer + 1

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        B, A, R = compaction_window(cfg)
        rows = cfg.rows_per_layer
        node = unsigned((rows + 1).bit_length())
        S, P = self.sentinel, self.pre_sentinel

        fresh = Signal(range(rows + 1), init=1)     # pending starts at row 0 out of reset
        qread = Signal(cfg.slot_bits)               # the free queues' head, alike in every class
        allocate = Signal()                         # the ALLOC state takes a row
        step = Signal(range(B + 4))                 # hops issued in the current window
        wait = Signal()                             # the second cycle of a walk hop
        hop0 = Signal()                             # step == 0 of the first window, as a register
        walk_done = Signal()                        # wait & (step == B + 3), as a register
        handle = Signal(B + 2)                      # one-hot: wait & (step == k + 2)
        windows = Signal(range(rows + 1))           # windows after the current one
        more = Signal()                             # windows != 0, as a register

        ports = []
        for c in range(cfg.classes):
            m.submodules[f"links{c}"] = links = self.links[c]
            m.submodules[f"skips{c}"] = skips = self.skips[c]
            m.submodules[f"free{c}"] = free = self.free[c]
            qwrite = Signal(cfg.slot_bits, name=f"qwrite{c}")
            ports.append((links, skips, free, qwrite))

        # Per class: the tail and the start-over anchor (logical S0 - 1; the sentinel when
        # S0 = 0), the node before the next window when there is no start-over (logical
        # cursor - 1), each with the node before it; in a walk the last node kept (the node
        # before the walk at first), and the last two nodes of the compacted list so far, whose
        # skip links the next node revealed completes; in a read-out the last node of each chain.
        names = {"tail": S, "tail_prev": P, "anchor": S, "anchor_prev": P, "cur": S,
                 "cur_prev": P, "last": S, "e1": S, "e2": P, "chain0": P, "chain1": S,
                 "new_tail_prev": P}
        regs = [{name: Signal(node, init=init, name=f"{name}{c}") for name, init in names.items()}
                for c in range(cfg.classes)]
        for c, r in enumerate(regs):
            r["fix_tail"] = Signal(name=f"fix_tail{c}")

        def reveal(c, value):
            skips, r = ports[c][1], regs[c]
            m.d.comb += [skips.w_addr.eq(r["e2"]), skips.w_data.eq(value), skips.w_en.eq(1)]
            m.d.sync += [r["e2"].eq(r["e1"]), r["e1"].eq(value)]

        # A read-out: the next position to look up, and the lookups of the last two cycles.
        req = Signal.like(self.walk.payload)
        last_pos = Signal(range(rows + 1))
        ipos = Signal(range(rows + 2))
        want = Signal()                             # ipos <= last_pos, as a register
        # The lookup returning is on the chain of ``ipos`` (so it is the node to look up from),
        # as a register.
        follow = Signal()
        lookup = data.StructLayout({"valid": 1, "pos": range(rows + 1), "last": 1, "pending": 1})
        flight = [Signal(lookup, name=f"lookup{n}") for n in range(2)]

        state = Signal(_State)
        with m.If(state == _State.IDLE):
            others = self.commit | self.append | self.alloc
            m.d.comb += [self.compact.ready.eq(~others),
                         self.walk.ready.eq(~others & ~self.compact.valid)]
            # A walk's registers follow its request in every idle cycle, so that their enable
            # is the state alone, not the decode of the request.
            startover = Mux(others, self.startover, self.compact.payload.startover)
            for r in regs:
                before = Mux(startover, r["anchor"], r["cur"])
                m.d.sync += [r["last"].eq(before), r["e1"].eq(before),
                             r["e2"].eq(Mux(startover, r["anchor_prev"], r["cur_prev"]))]
            groups = self.compact.payload.groups
            m.d.sync += [step.eq(0), wait.eq(0), hop0.eq(1), walk_done.eq(0), handle.eq(0),
                         windows.eq(Mux(others, 0, groups - 1)),
                         more.eq(~others & (groups != 1))]
            with m.If(self.commit | self.append):
                for c, (links, skips, _, _) in enumerate(ports):
                    r, pend = regs[c], self.pending[c]
                    m.d.comb += [links.w_addr.eq(r["tail"]), links.w_data.eq(pend),
                                 links.w_en.eq(1),
                                 skips.w_addr.eq(r["tail_prev"]), skips.w_data.eq(pend),
                                 skips.w_en.eq(1)]
                    m.d.sync += [r["tail"].eq(pend), r["tail_prev"].eq(r["tail"])]
                    with m.If(self.sink):
                        m.d.sync += [r["anchor"].eq(pend), r["anchor_prev"].eq(r["tail"]),
                                     r["cur"].eq(pend), r["cur_prev"].eq(r["tail"])]
                m.d.sync += self.busy.eq(1)
                with m.If(self.commit & self.drop):
                    m.d.sync += [allocate.eq(1), state.eq(_State.WALK)]
                with m.Else():
                    m.d.sync += [allocate.eq(~(self.append & self.hold)),
                                 state.eq(_State.ALLOC)]
            with m.Elif(self.alloc):
                m.d.sync += [allocate.eq(1), state.eq(_State.ALLOC), self.busy.eq(1)]
            with m.Elif(self.compact.valid):
                m.d.sync += [allocate.eq(0), state.eq(_State.WALK), self.busy.eq(1)]
            with m.Elif(self.walk.valid):
                walk = self.walk.payload
                m.d.sync += [req.eq(walk),
                             last_pos.eq(Mux(walk.pending, walk.length, walk.length - 1)),
                             ipos.eq(0), want.eq(1), follow.eq(0), flight[0].valid.eq(0),
                             flight[1].valid.eq(0)]
                for r in regs:
                    m.d.sync += [r["chain0"].eq(P), r["chain1"].eq(S)]
                m.d.sync += [state.eq(_State.READ), self.busy.eq(1)]

        with m.Elif(state == _State.WALK):
            # Hop ``step`` reads the link of the node before window node ``step`` (the node
            # before the walk for the first window's hop 0); its result, window node ``step``
            # (``B``: the node after the window, ``B + 1``: the one after that), arrives 2 cycles
            # later and addresses the next hop at once. While windows remain, hop ``B`` is the
            # next window's hop 0. Everything else it decides is done in the cycle after, from
            # a register, away from the block RAM's output.
            m.d.sync += [wait.eq(~wait), hop0.eq(0)]
            with m.If(~wait):
                with m.If(more & (step == B)):
                    m.d.sync += [step.eq(1), windows.eq(windows - 1), more.eq(windows != 1)]
                with m.Else():
                    m.d.sync += step.eq(step + 1)
            m.d.sync += walk_done.eq(~wait & (step == B + 2))
            m.d.sync += [handle[k].eq(~wait & (step == k + 1)) for k in range(B + 2)]
            with m.If(walk_done):
                m.d.sync += state.eq(_State.ALLOC)
            for c, (links, skips, free, qwrite) in enumerate(ports):
                r = regs[c]
                got = Signal(node, name=f"got{c}")
                m.d.sync += got.eq(links.r_data)
                m.d.comb += links.r_en.eq(~wait & (step <= B + 1))
                for k in range(B + 2):
                    with m.If(handle[k]):
                        if k < B and c <= k < c + A:
                            if k == c:
                                # A window's first kept node follows the last one kept before.
                                m.d.comb += [links.w_addr.eq(r["last"]), links.w_data.eq(got),
                                             links.w_en.eq(1)]
                            if k == c + A - 1:
                                m.d.sync += [r["last"].eq(got), r["cur"].eq(got),
                                             r["cur_prev"].eq(r["e1"])]
                            reveal(c, got)
                        elif k < B:
                            m.d.comb += [free.w_addr.eq(qwrite), free.w_data.eq(got),
                                         free.w_en.eq(1)]
                            m.d.sync += qwrite.eq(qwrite + 1)
                        elif k == B:
                            # The node after the walk follows the last kept one.
                            m.d.comb += [links.w_addr.eq(r["last"]), links.w_data.eq(got),
                                         links.w_en.eq(1)]
                            reveal(c, got)
                            # The tail's predecessor was dropped: fixed in ALLOC.
                            m.d.sync += [r["fix_tail"].eq(got == r["tail"]),
                                         r["new_tail_prev"].eq(r["e1"])]
                        else:
                            m.d.comb += [skips.w_addr.eq(r["e2"]), skips.w_data.eq(got),
                                         skips.w_en.eq(1)]

        with m.Elif(state == _State.ALLOC):
            # The free queue's read port has shown ``free[qread]`` since the second cycle after
            # qread last changed and after its last write.
            with m.If(allocate & (fresh < rows)):
                m.d.sync += fresh.eq(fresh + 1)
                for c in range(cfg.classes):
                    m.d.sync += self.pending[c].eq(fresh)
            with m.Elif(allocate):
                m.d.sync += qread.eq(qread + 1)
                for c, (_, _, free, _) in enumerate(ports):
                    m.d.sync += self.pending[c].eq(free.r_data)
            for r in regs:
                with m.If(r["fix_tail"]):
                    m.d.sync += [r["tail_prev"].eq(r["new_tail_prev"]), r["fix_tail"].eq(0)]
            m.d.sync += [state.eq(_State.IDLE), self.busy.eq(0)]

        with m.Elif(state == _State.READ):
            # Position ``ipos`` is looked up from the node two positions before it, on its
            # chain: the lookup returning this cycle if it is that one, else the chain's
            # register, which keeps every node returned.
            issue = Signal()
            back = flight[1]
            m.d.comb += [self.want.eq(want), issue.eq(want & self.credit)]
            m.d.sync += [flight[0].valid.eq(issue), flight[0].pos.eq(ipos),
                         flight[0].last.eq(ipos == last_pos),
                         flight[0].pending.eq(ipos == req.length), flight[1].eq(flight[0])]
            with m.If(issue):
                m.d.sync += [ipos.eq(ipos + 1), want.eq(ipos != last_pos)]
            m.d.sync += follow.eq(flight[0].valid & (flight[0].pos[0] == (ipos[0] ^ issue)))
            for c, (_, skips, _, _) in enumerate(ports):
                r, got = regs[c], skips.r_data
                m.d.comb += skips.r_en.eq(issue)
                with m.If(back.valid):
                    with m.If(back.pos[0]):
                        m.d.sync += r["chain1"].eq(got)
                    with m.Else():
                        m.d.sync += r["chain0"].eq(got)
            got_of_class = Signal(node)
            with m.Switch(req.cls):
                for c in range(cfg.classes):
                    with m.Case(c):
                        m.d.comb += got_of_class.eq(ports[c][1].r_data)
            m.d.comb += [
                self.slots.valid.eq(back.valid),
                self.slots.slot.eq(Mux(back.pending, self.pending[req.cls], got_of_class)),
                self.slots.pos.eq(back.pos),
                self.slots.last.eq(back.last),
            ]
            with m.If(back.valid & back.last):
                m.d.sync += [state.eq(_State.IDLE), self.busy.eq(0)]
        # Read addresses do not depend on the state, to keep the state decode off the routes to
        # the block RAMs; the enables say when a read counts.
        for c, (links, skips, free, _) in enumerate(ports):
            r = regs[c]
            m.d.comb += [
                links.r_addr.eq(Mux(hop0, r["last"], links.r_data)),
                skips.r_addr.eq(Mux(follow, skips.r_data,
                                    Mux(ipos[0], r["chain1"], r["chain0"]))),
                free.r_addr.eq(qread), free.r_en.eq(1),
            ]
        return m
