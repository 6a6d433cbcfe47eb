"""The KV-cache engine: K/V rows written once, compaction in the slot tables only.

:class:`KVCacheEngine` ties the policy's indexer (what to drop:
:class:`~hw.kv.ladder.LadderIndexer` for LaCache, :class:`~hw.kv.streaming.StreamingIndexer` for
StreamingLLM),
:class:`~hw.kv.slot_table.SlotTable` (which physical row holds which logical entry, per class)
and :class:`~hw.kv.storage.KVStorage` (the rows) behind one command stream and one response
stream. A decode step is: one ``WRITE`` per layer (any order), then ``COMMIT``; ``READ`` of a
layer is allowed at any time and sees that layer's current cache, including its row of the
step in progress once written, as :meth:`golden.kv_cache.KVCache.read` does.

A prefill of ``P`` tokens is ``P`` such steps, the first ``P - 1`` closed with ``APPEND``
instead of ``COMMIT``: the tokens are appended to every layer without compaction, and the
``COMMIT`` that closes the last one compacts them all at once, as
:meth:`golden.kv_cache.KVCache.extend` with a block of ``P`` tokens does under LaCache's clean
mode (:mod:`hw.kv.ladder`) or StreamingLLM; decode then continues. A ``READ`` in between sees
the tokens appended so far.
"""

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from ..lib.component import ConfiguredComponent
from ..lib.config import check_int
from ..lib.stream import SkidBuffer, StreamFIFO
from .ladder import LadderIndexer
from .policy import check_kv_config
from .slot_table import SlotTable
from .storage import KVStorage, row_layout
from .streaming import StreamingIndexer


__all__ = ["KVCacheEngine", "Op", "Status", "command_layout", "response_layout",
           "error_layout", "make_indexer", "READ_LATENCY", "READ_HOLD"]


class Op(enum.Enum, shape=3):
    """Command opcodes (the values 4 to 7 are rejected with ``errors.bad_op``)."""
    WRITE = 0
    COMMIT = 1
    READ = 2
    APPEND = 3


class Status(enum.Enum, shape=2):
    """What a response item carries."""
    ROW = 0         # a K/V row and its logical position
    EMPTY = 1       # the layer holds nothing yet
    BAD_LAYER = 2   # READ of a layer >= layers


class _State(enum.Enum):
    # A plain state register with if/elif decoding rather than ``m.FSM``, whose ``casez`` over
    # the state Verilator reports as incomplete. A COMMIT or READ taken in IDLE acts from the
    # next cycle (COMMIT, REQUEST), from registers, so that the command decode never reaches the
    # slot tables in the cycle it is made.
    IDLE = 0
    COMMIT = 1
    REQUEST = 2
    READ = 3
    RESPOND = 4
    APPEND = 5      # an APPEND
    FINAL = 6       # the COMMIT closing a prefill
    PREFILL = 7     # its compaction


#: Cycles from a ``READ`` offered on ``cmd`` (ready) to its first item on ``rsp``, without
#: stalls: command buffer 1, decode 1, walk request 1, slot lookup 2, issue 1, storage 4,
#: FIFO 2.
READ_LATENCY = 12

#: Cycles a ``READ`` of ``count`` rows holds the command stream beyond ``count``: the next
#: command is taken while its last rows are still in the pipeline.
READ_HOLD = 4


def make_indexer(config):
    """The indexer of ``config.policy``: :class:`~hw.kv.ladder.LadderIndexer` or
    :class:`~hw.kv.streaming.StreamingIndexer`."""
    cls = LadderIndexer if config.policy == "lacache" else StreamingIndexer
    return cls(config=config)


def _layer_shape(config):
    # One bit more than the layers need, so that an out-of-range layer can always be named,
    # and so be rejected rather than silently wrapped.
    return unsigned(config.layers.bit_length())


def command_layout(config):
    """``{op, layer, row}``; ``row`` (:func:`~hw.kv.storage.row_layout`) only for ``WRITE``."""
    return data.StructLayout({"op": Op, "layer": _layer_shape(config),
                              "row": row_layout(config)})


def response_layout(config):
    """``{status, last, pos, row}``: ``pos`` is the logical index (the key's RoPE position)."""
    return data.StructLayout({"status": Status, "last": 1,
                              "pos": range(config.rows_per_layer), "row": row_layout(config)})


def error_layout():
    """Sticky flags of rejected commands (cleared by reset only)."""
    return data.StructLayout({"bad_op": 1, "bad_layer": 1, "duplicate_write": 1,
                              "missing_write": 1, "overflow": 1})


class KVCacheEngine(ConfiguredComponent):
    """KV cache for streaming decode and prefills under LaCache (clean mode for prefills) or
    StreamingLLM, with compaction work independent of the budget in decode and proportional to
    the entries freed in a prefill.

    Parameters
    ----------
    config : KVConfig
        A LaCache or StreamingLLM configuration; ``layers``, ``kv_heads``, ``head_dim`` and
        ``elem_bits`` size the storage (``layers * 2**slot_bits`` rows of
        ``2 * kv_heads * head_dim * elem_bits`` bits), ``max_prefill`` the rows a prefill may
        fill.
    fifo_depth : int
        Depth of the response FIFO, at least 3. A read-out is issued only against free FIFO
        places (credits); one row per cycle needs 10 of them (the round trip from a slot
        lookup to the credit coming back), hence the default of 16.

    Interface attributes
    --------------------
    cmd : ``In(stream.Signature(command_layout(config)))``
        Commands, in order, through a skid buffer (one cycle of latency, full rate):

        * ``WRITE layer row``: the step's K/V row of ``layer``, stored in the physical row its
          class allocated. Rejected (flag ``bad_layer`` / ``duplicate_write``) for a layer out
          of range or already written in this step. 1 cycle.
        * ``COMMIT``: appends the step's token to every layer and compacts as the policy does.
          Rejected (``missing_write``) unless every layer was written. 3 cycles, or
          ``2 * B + 9`` when it compacts (``B = 1`` under StreamingLLM), whatever the budget
          (:func:`hw.kv.designs.commit_cycles`): the command stream waits meanwhile. After
          ``APPEND`` s, it closes the prefill: the compaction of all its tokens takes
          :func:`hw.kv.designs.prefill_commit_cycles`.
        * ``APPEND``: appends the step's token to every layer without compaction (a prefill's
          token other than its last). Rejected (``missing_write``, or ``overflow`` when a layer
          would have no row left for the next token: more than ``rows_per_layer`` entries
          before a compaction), the step then staying open. 3 cycles.
        * ``READ layer``: answers every row the layer holds, in logical order. It holds the
          command stream for ``count +`` :data:`READ_HOLD` cycles (one row is looked up per
          cycle while the response FIFO has room); the next command may follow at once.
    rsp : ``Out(stream.Signature(response_layout(config)))``
        The answers to ``READ``, nothing else: ``count`` items of status ``ROW`` with
        ``pos = 0 .. count - 1`` and the row, the last flagged; or one item ``EMPTY`` or
        ``BAD_LAYER`` with ``last`` set. The first item leaves :data:`READ_LATENCY` cycles
        after the ``READ`` is offered, then one per cycle without stalls.
    errors : ``Out(error_layout())``
        Sticky flags of rejected commands.
    length : ``Out(range(rows_per_layer + 1))``
        Entries every layer holds after the last commit or append.

    Raises
    ------
    TypeError, ValueError
        For a config that is not a :class:`KVConfig`, or a bad ``fifo_depth``.
    """

    def __init__(self, *, config, fifo_depth=16):
        check_kv_config("KVCacheEngine", config)
        self._fifo_depth = check_int("fifo_depth", fifo_depth, min=3, max=1 << 16,
                                     owner="KVCacheEngine")
        super().__init__(config, {
            "cmd": In(stream.Signature(command_layout(config))),
            "rsp": Out(stream.Signature(response_layout(config))),
            "errors": Out(error_layout()),
            "length": Out(range(config.rows_per_layer + 1)),
        })


    @property
    def fifo_depth(self):
        """Depth of the response FIFO."""
        return self._fifo_depth

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        L = cfg.layers
        m.submodules.indexer = indexer = make_indexer(cfg)
        m.submodules.table = table = SlotTable(config=cfg)
        m.submodules.storage = storage = KVStorage(config=cfg)
        m.submodules.fifo = fifo = StreamFIFO(response_layout(cfg), depth=self._fifo_depth)
        wiring.connect(m, wiring.flipped(self.rsp), fifo.o)

        # Commands are decoded from a register next to the decode logic, not from wherever the
        # producer's register sits.
        m.submodules.cmd_buffer = cmd_buffer = SkidBuffer(command_layout(cfg))
        wiring.connect(m, wiring.flipped(self.cmd), cmd_buffer.i)
        cmd_stream = cmd_buffer.o
        cmd = cmd_stream.payload
        layer_ok = cmd.layer < L
        cls = Signal(range(cfg.classes))
        m.d.comb += cls.eq(cmd.layer % cfg.classes)     # a few LUTs: layer has ~log2(L) bits
        written = Signal(L)             # layers whose row of the step in progress is stored
        is_written = written.bit_select(cmd.layer[:max(1, (L - 1).bit_length())], 1)
        # All are, in the cycle a COMMIT or APPEND is taken (the last WRITE was taken in the
        # cycle before at the latest).
        complete = written == (1 << L) - 1
        # Another APPEND leaves a row for the token after it, as a register like ``complete``.
        room = Signal()
        m.d.sync += room.eq(indexer.length <= cfg.rows_per_layer - 2)
        # A READ, as taken: its layer and class, and whether its row of this step is stored.
        read_layer = Signal.like(storage.r_layer)
        read_cls = Signal.like(cls)
        read_written = Signal()
        # ``length == 0``, registered: a READ reaches REQUEST at least 2 cycles after a commit.
        no_entries = Signal(init=1)
        m.d.sync += no_entries.eq(indexer.length == 0)

        wiring.connect(m, indexer.op, table.compact)
        m.d.comb += [
            self.length.eq(indexer.length),
            indexer.advance.eq(table.commit),
            storage.w_layer.eq(cmd.layer),
            storage.w_slot.eq(table.pending[cls]),
            storage.w_row.eq(cmd.row),
        ]

        # The plan, registered: it changes only at a commit, and the table cannot take the next
        # one within 2 cycles.
        m.d.sync += [table.drop.eq(indexer.plan.drop), table.startover.eq(indexer.plan.startover),
                     table.sink.eq(indexer.sink)]

        # Read-out pipeline: an issue register, then the storage's latency, then the FIFO. Every
        # item goes through it (the one-item answers too, so that they keep their order behind
        # rows still in flight), and none ever waits in it: an item is issued only with a
        # credit, one per free FIFO place, returned when an item leaves the FIFO.
        item = data.StructLayout({"valid": 1, "status": Status,
                                  "pos": response_layout(cfg)["pos"].shape, "last": 1})
        stages = [Signal(item, name=f"item{n}") for n in range(1 + storage.latency)]
        issue, arrive = stages[0], stages[-1]
        issue_layer = Signal.like(storage.r_layer)
        issue_slot = Signal.like(storage.r_slot)
        m.d.sync += [later.eq(earlier) for earlier, later in zip(stages, stages[1:])]
        m.d.sync += issue.valid.eq(0)
        m.d.comb += [
            storage.r_en.eq(issue.valid),
            storage.r_layer.eq(issue_layer),
            storage.r_slot.eq(issue_slot),
            fifo.i.valid.eq(arrive.valid),
            fifo.i.payload.status.eq(arrive.status),
            fifo.i.payload.pos.eq(arrive.pos),
            fifo.i.payload.last.eq(arrive.last),
        ]
        with m.If(arrive.status == Status.ROW):
            m.d.comb += fifo.i.payload.row.eq(storage.r_row)
        credits = Signal(range(self._fifo_depth + 1), init=self._fifo_depth)
        credit = Signal(init=1)         # credits != 0, as a register
        take = Signal()
        give = fifo.o.valid & fifo.o.ready
        m.d.sync += [credits.eq(credits - take + give),
                     credit.eq(give | (credits >= 2) | ((credits == 1) & ~take))]

        # What a COMMIT or APPEND does, decided in the cycle it is taken: the table and the
        # indexer, which fan these pulses out to every class's registers, act in the next cycle
        # from these registers alone.
        do_commit, do_append, do_final = Signal(), Signal(), Signal()
        m.d.sync += [do_commit.eq(0), do_append.eq(0), do_final.eq(0)]

        m.d.comb += [table.commit.eq(do_commit), table.append.eq(do_append | do_final),
                     table.hold.eq(do_final), indexer.append.eq(do_append | do_final),
                     indexer.compact.eq(do_final)]
        with m.If(do_commit | do_append | do_final):
            m.d.sync += written.eq(0)

        status = Signal(Status)         # the one answer of RESPOND
        state = Signal(_State)
        with m.If(state == _State.IDLE):
            m.d.comb += cmd_stream.ready.eq(~table.busy)
            with m.If(cmd_stream.valid & ~table.busy):
                with m.If(cmd.op == Op.WRITE):
                    with m.If(~layer_ok):
                        m.d.sync += self.errors.bad_layer.eq(1)
                    with m.Else():
                        # Set whether or not it was: the flag's enable then does not wait for
                        # the multiplexer that reads it.
                        m.d.sync += [is_written.eq(1),
                                     self.errors.duplicate_write.eq(
                                         self.errors.duplicate_write | is_written)]
                        with m.If(~is_written):
                            m.d.comb += storage.w_en.eq(1)
                with m.Elif(cmd.op == Op.COMMIT):
                    m.d.sync += [state.eq(Mux(indexer.prefill, _State.FINAL, _State.COMMIT)),
                                 do_commit.eq(complete & ~indexer.prefill),
                                 do_final.eq(complete & indexer.prefill)]
                    with m.If(~complete):
                        m.d.sync += self.errors.missing_write.eq(1)
                with m.Elif(cmd.op == Op.APPEND):
                    m.d.sync += [state.eq(_State.APPEND), do_append.eq(complete & room)]
                    with m.If(~complete):
                        m.d.sync += self.errors.missing_write.eq(1)
                    with m.Elif(~room):
                        m.d.sync += self.errors.overflow.eq(1)
                with m.Elif(cmd.op == Op.READ):
                    m.d.sync += [read_layer.eq(cmd.layer), read_cls.eq(cls),
                                 read_written.eq(is_written)]
                    with m.If(~layer_ok):
                        m.d.sync += status.eq(Status.BAD_LAYER)
                        m.d.sync += state.eq(_State.RESPOND)
                    with m.Else():
                        m.d.sync += status.eq(Status.EMPTY)
                        m.d.sync += state.eq(_State.REQUEST)
                with m.Else():
                    m.d.sync += self.errors.bad_op.eq(1)

        with m.Elif((state == _State.COMMIT) | (state == _State.APPEND)):
            m.d.sync += state.eq(_State.IDLE)

        with m.Elif(state == _State.FINAL):
            m.d.sync += state.eq(Mux(do_final, _State.PREFILL, _State.IDLE))

        with m.Elif(state == _State.PREFILL):
            # The indexer hands its walks to the table; once it is done, and so is the last
            # walk, the next token's row is allocated from the rows the walks freed.
            with m.If(~indexer.busy & ~table.busy):
                m.d.comb += table.alloc.eq(1)
                m.d.sync += state.eq(_State.IDLE)

        with m.Elif(state == _State.REQUEST):
            with m.If(no_entries & ~read_written):
                m.d.sync += state.eq(_State.RESPOND)
            with m.Else():
                m.d.comb += [
                    table.walk.valid.eq(1),
                    table.walk.payload.cls.eq(read_cls),
                    table.walk.payload.length.eq(indexer.length),
                    table.walk.payload.pending.eq(read_written),
                ]
                m.d.sync += state.eq(_State.READ)

        with m.Elif(state == _State.READ):
            slots = table.slots
            m.d.comb += [table.credit.eq(credit), take.eq(table.want & credit)]
            m.d.sync += issue.valid.eq(slots.valid)
            with m.If(slots.valid & slots.last):
                m.d.sync += state.eq(_State.IDLE)

        with m.Elif(state == _State.RESPOND):
            m.d.comb += take.eq(credit)
            with m.If(credit):
                m.d.sync += [issue.valid.eq(1), state.eq(_State.IDLE)]

        # The issue register's fields follow the walk (or RESPOND's one answer) in every cycle,
        # so that their enable is no decode of the table's handshake; ``valid`` says when they
        # hold an item.
        responding = state == _State.RESPOND
        m.d.sync += [issue.status.eq(Mux(responding, status, Status.ROW)),
                     issue.pos.eq(Mux(responding, 0, table.slots.pos)),
                     issue.last.eq(responding | table.slots.last),
                     issue_layer.eq(read_layer), issue_slot.eq(table.slots.slot)]
        return m
