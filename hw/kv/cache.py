"""The LaCache KV-cache engine: K/V rows written once, compaction in the slot tables only.

:class:`KVCacheEngine` ties :class:`~hw.kv.ladder.LadderIndexer` (what to drop),
:class:`~hw.kv.slot_table.SlotTable` (which physical row holds which logical entry, per class)
and :class:`~hw.kv.storage.KVStorage` (the rows) behind one command stream and one response
stream. A decode step is: one ``WRITE`` per layer (any order), then ``COMMIT``; ``READ`` of a
layer is allowed at any time and sees that layer's current cache, including its row of the
step in progress once written, as :meth:`golden.kv_cache.KVCache.read` does.
"""

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from ..lib.config import check_int
from ..lib.stream import StreamFIFO
from .ladder import LadderIndexer, check_lacache_config
from .slot_table import SlotTable
from .storage import KVStorage, row_layout


__all__ = ["KVCacheEngine", "Op", "Status", "command_layout", "response_layout",
           "error_layout"]


class Op(enum.Enum, shape=2):
    """Command opcodes (the value 3 is rejected with ``errors.bad_op``)."""
    WRITE = 0
    COMMIT = 1
    READ = 2


class Status(enum.Enum, shape=2):
    """What a response item carries."""
    ROW = 0         # a K/V row and its logical position
    EMPTY = 1       # the layer holds nothing yet
    BAD_LAYER = 2   # READ of a layer >= layers


class _State(enum.Enum):
    # A plain state register with if/elif decoding rather than ``m.FSM``, whose ``casez`` over
    # the state Verilator reports as incomplete.
    IDLE = 0
    READ = 1
    RESPOND = 2


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
                              "missing_write": 1})


class KVCacheEngine(wiring.Component):
    """LaCache KV cache for streaming decode, with compaction work independent of the budget.

    Parameters
    ----------
    config : KVConfig
        A LaCache configuration; ``layers``, ``kv_heads``, ``head_dim`` and ``elem_bits`` size
        the storage (``layers * 2**slot_bits`` rows of ``2 * kv_heads * head_dim * elem_bits``
        bits).
    fifo_depth : int
        Depth of the response FIFO (at least 4 for one row per cycle).

    Interface attributes
    --------------------
    cmd : ``In(stream.Signature(command_layout(config)))``
        Commands, one at a time, in order:

        * ``WRITE layer row``: the step's K/V row of ``layer``, stored at once in the physical
          row its class allocated. Rejected (flag ``bad_layer`` / ``duplicate_write``) for a
          layer out of range or already written in this step. 1 cycle.
        * ``COMMIT``: appends the step's token to every layer and compacts as LaCache does.
          Rejected (``missing_write``) unless every layer was written. 2 cycles, or ``B + 4``
          when it compacts, whatever the budget: ``cmd.ready`` is low meanwhile.
        * ``READ layer``: answers every row the layer holds, in logical order. It holds the
          command stream for ``count + 1`` cycles (the rows are issued at one per cycle while the
          response FIFO has room); the next command may follow at once.
    rsp : ``Out(stream.Signature(response_layout(config)))``
        The answers to ``READ``, nothing else: ``count`` items of status ``ROW`` with
        ``pos = 0 .. count - 1`` and the row, the last flagged; or one item ``EMPTY`` or
        ``BAD_LAYER`` with ``last`` set. The first item leaves 5 cycles after the ``READ`` is
        taken (slot walk 2, storage read 1, FIFO 2), then one per cycle without stalls.
    errors : ``Out(error_layout())``
        Sticky flags of rejected commands.
    length : ``Out(range(capacity + 2))``
        Entries every layer holds after the last commit.

    Raises
    ------
    TypeError, ValueError
        For a config that is not a LaCache :class:`KVConfig`, or a bad ``fifo_depth``.
    """

    def __init__(self, *, config, fifo_depth=4):
        self._config = check_lacache_config("KVCacheEngine", config)
        self._fifo_depth = check_int("fifo_depth", fifo_depth, min=4, max=1 << 16,
                                     owner="KVCacheEngine")
        super().__init__({
            "cmd": In(stream.Signature(command_layout(config))),
            "rsp": Out(stream.Signature(response_layout(config))),
            "errors": Out(error_layout()),
            "length": Out(range(config.capacity + 2)),
        })

    @property
    def config(self):
        """The :class:`KVConfig` the engine is built from."""
        return self._config

    @property
    def fifo_depth(self):
        """Depth of the response FIFO."""
        return self._fifo_depth

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        L = cfg.layers
        m.submodules.indexer = indexer = LadderIndexer(config=cfg)
        m.submodules.table = table = SlotTable(config=cfg)
        m.submodules.storage = storage = KVStorage(config=cfg)
        m.submodules.fifo = fifo = StreamFIFO(response_layout(cfg), depth=self._fifo_depth)
        wiring.connect(m, wiring.flipped(self.rsp), fifo.o)

        cmd = self.cmd.payload
        layer_ok = cmd.layer < L
        cls = Signal(range(cfg.classes))
        m.d.comb += cls.eq(cmd.layer % cfg.classes)     # a few LUTs: layer has ~log2(L) bits
        written = Signal(L)             # layers whose row of the step in progress is stored
        is_written = written.bit_select(cmd.layer[:max(1, (L - 1).bit_length())], 1)
        read_layer = Signal.like(storage.r_layer)

        m.d.comb += [
            self.length.eq(indexer.length),
            table.drop.eq(indexer.plan.drop),
            table.startover.eq(indexer.plan.startover),
            table.sink.eq(indexer.length + 1 == cfg.sinks),
            indexer.advance.eq(table.commit),
            storage.w_layer.eq(cmd.layer),
            storage.w_slot.eq(table.pending[cls]),
            storage.w_row.eq(cmd.row),
        ]

        # The response FIFO is filled one cycle after an item is issued (the storage read), so
        # an item may be issued only while the FIFO has room for it and for the one in flight;
        # both terms are registers, which keeps ``slots.ready`` free of combinational loops.
        push = Signal.like(fifo.i.payload)
        push_valid = Signal()
        room = Signal()
        m.d.comb += [
            room.eq(fifo.level + push_valid < self._fifo_depth),
            fifo.i.valid.eq(push_valid),
            fifo.i.payload.eq(push),
        ]
        with m.If(push.status == Status.ROW):
            m.d.comb += fifo.i.payload.row.eq(storage.r_row)
        m.d.sync += push_valid.eq(0)

        status = Signal(Status)         # the one answer of RESPOND
        state = Signal(_State)
        with m.If(state == _State.IDLE):
            m.d.comb += self.cmd.ready.eq(~table.busy)
            with m.If(self.cmd.valid & ~table.busy):
                with m.If(cmd.op == Op.WRITE):
                    with m.If(~layer_ok):
                        m.d.sync += self.errors.bad_layer.eq(1)
                    with m.Elif(is_written):
                        m.d.sync += self.errors.duplicate_write.eq(1)
                    with m.Else():
                        m.d.comb += storage.w_en.eq(1)
                        m.d.sync += is_written.eq(1)
                with m.Elif(cmd.op == Op.COMMIT):
                    with m.If(written == (1 << L) - 1):
                        m.d.comb += table.commit.eq(1)
                        m.d.sync += written.eq(0)
                    with m.Else():
                        m.d.sync += self.errors.missing_write.eq(1)
                with m.Elif(cmd.op == Op.READ):
                    count = indexer.length + is_written
                    m.d.sync += read_layer.eq(cmd.layer)
                    with m.If(~layer_ok):
                        m.d.sync += status.eq(Status.BAD_LAYER)
                        m.d.sync += state.eq(_State.RESPOND)
                    with m.Elif(count == 0):
                        m.d.sync += status.eq(Status.EMPTY)
                        m.d.sync += state.eq(_State.RESPOND)
                    with m.Else():
                        m.d.comb += [
                            table.walk.valid.eq(1),
                            table.walk.payload.cls.eq(cls),
                            table.walk.payload.count.eq(count),
                            table.walk.payload.length.eq(indexer.length),
                        ]
                        m.d.sync += state.eq(_State.READ)
                with m.Else():
                    m.d.sync += self.errors.bad_op.eq(1)

        with m.Elif(state == _State.READ):
            slots = table.slots
            m.d.comb += [
                slots.ready.eq(room),
                storage.r_en.eq(slots.valid & room),
                storage.r_layer.eq(read_layer),
                storage.r_slot.eq(slots.payload.slot),
            ]
            with m.If(slots.valid & room):
                m.d.sync += [
                    push_valid.eq(1),
                    push.status.eq(Status.ROW),
                    push.pos.eq(slots.payload.pos),
                    push.last.eq(slots.payload.last),
                ]
                with m.If(slots.payload.last):
                    m.d.sync += state.eq(_State.IDLE)

        with m.Elif(state == _State.RESPOND):
            with m.If(room):
                m.d.sync += [push_valid.eq(1), push.status.eq(status), push.pos.eq(0),
                             push.last.eq(1)]
                m.d.sync += state.eq(_State.IDLE)
        return m
