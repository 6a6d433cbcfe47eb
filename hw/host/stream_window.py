"""Bus peripherals that carry an accelerator's streams (protocol: :mod:`hw.host.bus`).

An accelerator of the SoC is driven through its valid/ready streams only; each stream gets a
window on the bus. Word 0 of a window is its status (items it can take, or items waiting); every
other word address is the stream's data port, so that a block transfer of the host protocol at
``base + 1`` moves consecutive words through it. A payload wider than 32 bits travels as
``ceil(width / 32)`` words, least significant first.

Both windows make the bus wait (no ``ack``) rather than drop or invent data: a write to a full
input stream waits for room, a read of an empty output stream waits for an item; the host
protocol's bus timeout ends a wait that lasts, and the host reads the status word first to avoid
one.
"""

from amaranth.hdl import Const, Module, Mux, Shape, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..lib.config import check_int
from ..lib.stream import StreamFIFO
from .bus import DATA_WIDTH, BusSignature


__all__ = ["words_per_item", "StreamInWindow", "StreamOutWindow"]


def words_per_item(payload_shape):
    """Bus words of one item of ``payload_shape``."""
    return max(1, -(-Shape.cast(payload_shape).width // DATA_WIDTH))


class _Window(wiring.Component):
    """A stream window's queue and bus port. Parameters of both windows:

    payload_shape : ShapeLike
    depth : int
        Items the queue holds (>= 3: full rate).
    span_bits : int
        Word address bits of the window.
    """

    def __init__(self, owner, payload_shape, depth, span_bits, stream_member):
        self._payload_shape = payload_shape
        self._depth = check_int("depth", depth, min=3, max=1 << 16, owner=owner)
        self._words = words_per_item(payload_shape)
        check_int("span_bits", span_bits, min=1, max=30, owner=owner)
        super().__init__({"bus": In(BusSignature(span_bits)), "stream": stream_member})

    @property
    def payload_shape(self):
        return self._payload_shape

    @property
    def depth(self):
        """Items the window's queue holds."""
        return self._depth

    @property
    def words_per_item(self):
        return self._words

    def _word_counter(self, m, advance):
        """Index of the next word within the current item, stepped by ``advance``; returns
        ``(index, last)``."""
        if self._words == 1:
            # Every word is the last: no counter (and no zero-width signal in the Verilog).
            return Const(0), Const(1)
        index = Signal(range(self._words))
        last = index == self._words - 1
        with m.If(advance):
            m.d.sync += index.eq(Mux(last, 0, index + 1))
        return index, last


class StreamInWindow(_Window):
    """The bus into a stream (host to accelerator), through a :class:`StreamFIFO`
    (``payload_shape``, ``depth`` and ``span_bits`` keyword-only, as for every window).

    Interface attributes
    --------------------
    bus : ``In(BusSignature(span_bits))``
        Address 0 reads the free item slots of the queue (writes are ignored); any other address
        takes one data word: the last word of an item is acknowledged when the queue has room,
        the others at once. Reads of data addresses return 0.
    stream : ``Out(stream.Signature(payload_shape))``
        The items.
    """

    def __init__(self, payload_shape, *, depth, span_bits):
        super().__init__("StreamInWindow", payload_shape, depth, span_bits,
                         Out(stream.Signature(payload_shape)))

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        m.submodules.queue = queue = StreamFIFO(self._payload_shape, depth=self._depth)
        wiring.connect(m, queue.o, wiring.flipped(self.stream))
        status = bus.addr == 0
        data_write = bus.req & bus.we & ~status
        # Words before the last of an item wait here.
        held = Signal(DATA_WIDTH * (self._words - 1) or 1)
        index, last = self._word_counter(m, data_write & bus.ack)
        m.d.comb += [
            bus.ack.eq(bus.req & (~data_write | ~last | queue.i.ready)),
            bus.r_data.eq(Mux(status, self._depth - queue.level, 0)),
            queue.i.valid.eq(data_write & last),
            queue.i.payload.eq(bus.w_data if self._words == 1
                               else bus.w_data.shift_left(len(held)) | held),
        ]
        if self._words > 1:
            with m.If(data_write & ~last):
                m.d.sync += held.eq(held.shift_right(DATA_WIDTH)
                                    | bus.w_data.shift_left(len(held) - DATA_WIDTH))
        return m


class StreamOutWindow(_Window):
    """A stream into the bus (accelerator to host), through a :class:`StreamFIFO`
    (``payload_shape``, ``depth`` and ``span_bits`` keyword-only, as for every window).

    Interface attributes
    --------------------
    bus : ``In(BusSignature(span_bits))``
        Address 0 reads the items waiting (writes are ignored); any other address reads the next
        word of the oldest item, acknowledged once an item is there; reading an item's last word
        removes it. Writes to data addresses are ignored.
    stream : ``In(stream.Signature(payload_shape))``
        The items.
    """

    def __init__(self, payload_shape, *, depth, span_bits):
        super().__init__("StreamOutWindow", payload_shape, depth, span_bits,
                         In(stream.Signature(payload_shape)))

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        m.submodules.queue = queue = StreamFIFO(self._payload_shape, depth=self._depth)
        wiring.connect(m, wiring.flipped(self.stream), queue.i)
        status = bus.addr == 0
        data_read = bus.req & ~bus.we & ~status
        index, last = self._word_counter(m, data_read & bus.ack)
        words = [Value.cast(queue.o.payload)[n * DATA_WIDTH:(n + 1) * DATA_WIDTH]
                 for n in range(self._words)]
        word = Signal(DATA_WIDTH)
        with m.Switch(index):
            for n, value in enumerate(words):
                with m.Case(n):
                    m.d.comb += word.eq(value)
        m.d.comb += [
            bus.ack.eq(bus.req & (~data_read | queue.o.valid)),
            bus.r_data.eq(Mux(status, queue.level, word)),
            queue.o.ready.eq(data_read & last),
        ]
        return m
