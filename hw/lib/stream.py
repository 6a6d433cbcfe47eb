"""Stream plumbing: two register slices that break timing paths, a FIFO built on block RAM, and
a FIFO for writers that count credits.

All four carry an :class:`amaranth.lib.stream.Signature` stream from ``i`` to ``o``: a transfer
happens on a cycle where ``valid & ready``; the payload is passed through bit for bit, in order,
with no drop and no duplicate, whatever the valid/ready pattern on either side.
"""

from amaranth.hdl import Module, Mux, Shape, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .config import check_int


__all__ = ["SkidBuffer", "PointerBuffer", "StreamFIFO", "CreditFIFO"]

#: The deepest :class:`CreditFIFO` that counts its items in a thermometer code (a flip-flop per
#: entry, for an 8x8 systolic array's queues at 200 MHz); deeper ones count in binary, which
#: saved a 16x16 W2A8 array 544 of the 25F's flip-flops.
_THERMOMETER_DEPTH = 32


def _check_payload_shape(owner, payload_shape):
    try:
        Shape.cast(payload_shape)
    except TypeError as error:
        raise TypeError(f"{owner}.payload_shape must be a shape-castable object, "
                        f"not {payload_shape!r}") from error
    return payload_shape


class SkidBuffer(wiring.Component):
    """Two-entry pipeline register that cuts every combinational path between its two streams.

    A plain register on ``payload``/``valid`` still leaves ``o.ready -> i.ready`` combinational, so
    a chain of them closes timing through the whole backpressure path. Here ``i.ready`` is driven
    by a register too: when ``o`` stalls in the same cycle as ``i`` delivers, the item just
    accepted goes into a second ("skid") register, and ``i.ready`` falls one cycle later.

    Parameters
    ----------
    payload_shape : :class:`~amaranth.hdl.ShapeLike`
        Shape of the stream payload (a plain width, a signedness-carrying shape, or a
        :mod:`amaranth.lib.data` layout).

    Interface attributes
    --------------------
    i : ``In(stream.Signature(payload_shape))``
        Items to forward. ``i.ready`` is a register output: it is low exactly while the buffer
        holds two items, and does not depend on ``o.ready`` or ``i.valid`` in the same cycle.
    o : ``Out(stream.Signature(payload_shape))``
        The same items, in the same order. ``o.valid`` and ``o.payload`` are register outputs.

    Latency is 1 cycle: an item accepted on ``i`` in cycle ``t`` is offered on ``o`` from
    cycle ``t + 1``. Throughput is one transfer per cycle for as long as ``o.ready`` stays high;
    with no stalls, ``N`` items pass in ``N + 1`` cycles.
    """

    def __init__(self, payload_shape):
        self._payload_shape = _check_payload_shape("SkidBuffer", payload_shape)
        super().__init__({
            "i": In(stream.Signature(payload_shape)),
            "o": Out(stream.Signature(payload_shape)),
        })

    @property
    def payload_shape(self):
        """Shape of the payload carried by ``i`` and ``o``."""
        return self._payload_shape

    def elaborate(self, platform):
        m = Module()

        # The skid register is empty out of reset, so the buffer is ready from the first cycle;
        # ``i.ready`` is wired straight from this flop to keep it free of logic.
        skid_empty = Signal(init=1)
        skid_payload = Signal(self._payload_shape)
        m.d.comb += self.i.ready.eq(skid_empty)

        # While the skid register is empty it follows the input, so that a stall of ``o`` in the
        # cycle ``i`` delivers needs only to clear ``skid_empty`` to keep the item.
        with m.If(skid_empty):
            m.d.sync += skid_payload.eq(self.i.payload)

        with m.If(~self.o.valid | self.o.ready):
            # The output register is free at the next edge: refill it from the skid register
            # first (older item, and ``i`` was not ready this cycle), else from ``i``.
            m.d.sync += skid_empty.eq(1)
            with m.If(skid_empty):
                m.d.sync += [
                    self.o.payload.eq(self.i.payload),
                    self.o.valid.eq(self.i.valid),
                ]
            with m.Else():
                m.d.sync += [
                    self.o.payload.eq(skid_payload),
                    self.o.valid.eq(1),
                ]
        with m.Elif(self.i.valid):
            # Output stalled: an item offered now was either just captured by the skid register
            # (it was empty, so ``i.ready`` was high) or refused because it was full. Either way
            # the skid register is full at the next edge.
            m.d.sync += skid_empty.eq(0)

        return m


class PointerBuffer(wiring.Component):
    """Two-entry register slice whose flow control moves pointers, never a payload.

    A :class:`SkidBuffer` loads its output register when ``o.ready`` allows: every payload bit's
    enable depends on the consumer's decision in the same cycle. Where that decision is a few
    levels of logic away and the payload is wide, the fan-out to the enables is the critical
    path (a lane of an 8-lane GBU spent 9 ns of routing on it at 61 MHz). Here the two entries
    are written in turn, the free one following ``i.payload`` while the buffer is not full, and
    ``o.payload`` is the older entry picked by a read pointer: ``o.ready`` and ``i.valid`` only
    move the pointers and the two flags.

    Parameters
    ----------
    payload_shape : :class:`~amaranth.hdl.ShapeLike`
        Shape of the stream payload.

    Interface attributes
    --------------------
    i : ``In(stream.Signature(payload_shape))``
        Items to forward. ``i.ready`` is a register output, low exactly while two items are held.
    o : ``Out(stream.Signature(payload_shape))``
        The same items, in the same order. ``o.valid`` is a register output; ``o.payload`` is a
        two-way multiplexer of registers, selected by a register.
    previous : ``Out(payload_shape)``
        The payload of the item that left on ``o`` in the cycle before, valid in the cycle after
        each transfer on ``o`` (its entry is written at the end of that cycle at the earliest):
        for a consumer that takes its decision from a few narrow fields of ``o.payload`` and
        loads the wide rest a cycle later.

    Latency and throughput are those of :class:`SkidBuffer`: an item accepted in cycle ``t``
    is offered from cycle ``t + 1``, and ``N`` items pass in ``N + 1`` cycles without stalls.
    """

    def __init__(self, payload_shape):
        self._payload_shape = _check_payload_shape("PointerBuffer", payload_shape)
        super().__init__({
            "i": In(stream.Signature(payload_shape)),
            "o": Out(stream.Signature(payload_shape)),
            "previous": Out(payload_shape),
        })

    @property
    def payload_shape(self):
        """Shape of the payload carried by ``i`` and ``o``."""
        return self._payload_shape

    def elaborate(self, platform):
        m = Module()
        entries = [Signal(self._payload_shape, name=f"entry{n}", reset_less=True)
                   for n in range(2)]
        # The state is the two flags and the read pointer alone, so that it has no unreachable
        # values: the count is 0, 1 or 2 by the flags, and the entry written next is the one
        # after the newest, the read pointer's own with 0 or 2 items held.
        read, last_read = Signal(), Signal()
        not_full = Signal(init=1)
        m.d.comb += self.i.ready.eq(not_full)
        count = self.o.valid + ~not_full
        write = read ^ (self.o.valid & not_full)
        put = self.i.valid & not_full
        get = self.o.valid & self.o.ready
        after = Signal(range(3))
        m.d.comb += after.eq(count + put - get)
        m.d.sync += [not_full.eq(after != 2), self.o.valid.eq(after != 0),
                     read.eq(read ^ get), last_read.eq(read)]
        for n, entry in enumerate(entries):
            with m.If(not_full & (write == n)):
                m.d.sync += entry.eq(self.i.payload)
        m.d.comb += [self.o.payload.eq(Mux(read, entries[1], entries[0])),
                     self.previous.eq(Mux(last_read, entries[1], entries[0]))]
        return m


class _Queue(wiring.Component):
    """What the queues share: a checked payload shape and depth, exposed read-only."""

    def __init__(self, owner, payload_shape, depth, members):
        self._payload_shape = _check_payload_shape(owner, payload_shape)
        self._depth = check_int("depth", depth, min=1, owner=owner)
        super().__init__(members(payload_shape, depth))

    @property
    def payload_shape(self):
        """Shape of the payload carried by ``i`` and ``o``."""
        return self._payload_shape

    @property
    def depth(self):
        """Number of items the queue holds."""
        return self._depth


class StreamFIFO(_Queue):
    """First-in, first-out queue between two streams, stored in block RAM when deep enough.

    A stream wrapper around :class:`amaranth.lib.fifo.SyncFIFOBuffered`: its memory has a
    synchronous read port, so it maps to ECP5 block RAM (Yosys picks distributed RAM or flops for
    small depths), and its output is registered.

    Parameters
    ----------
    payload_shape : :class:`~amaranth.hdl.ShapeLike`
        Shape of the stream payload (a plain width, a signedness-carrying shape, or a
        :mod:`amaranth.lib.data` layout).
    depth : :class:`int`
        Number of items the queue holds, at least 1.

    Interface attributes
    --------------------
    i : ``In(stream.Signature(payload_shape))``
        Items to enqueue. ``i.ready`` is high exactly while fewer than ``depth`` items are held,
        except that with ``depth == 2`` it is also low in the cycle after each accepted item. It
        depends on registers only, not on ``o.ready`` or ``i.valid`` in the same cycle.
    o : ``Out(stream.Signature(payload_shape))``
        The same items, in the same order. ``o.valid`` and ``o.payload`` depend on registers
        only.
    level : ``Out(range(depth + 1))``
        Number of items held, including the one offered on ``o``: an item counts from the cycle
        after its transfer on ``i`` through the cycle of its transfer on ``o``.

    Latency is 2 cycles from ``i`` to ``o`` on an empty queue (1 cycle when ``depth == 1``).
    Throughput is one transfer per cycle when ``depth >= 3``. With ``depth`` 1 or 2 the queue
    cannot accept while an item is being read, so it alternates and sustains one transfer every
    other cycle; put a :class:`SkidBuffer` there instead when full rate matters.

    Raises
    ------
    :exc:`ValueError`
        If ``depth`` is not an integer of at least 1.
    """

    def __init__(self, payload_shape, *, depth):
        super().__init__("StreamFIFO", payload_shape, depth, lambda shape, depth: {
            "i": In(stream.Signature(shape)),
            "o": Out(stream.Signature(shape)),
            "level": Out(range(depth + 1)),
        })

    def elaborate(self, platform):
        m = Module()

        # Connected by hand rather than through ``w_stream``/``r_stream``: those carry a plain
        # ``width``-bit payload, whose signature differs from ours for signed shapes and layouts.
        m.submodules.fifo = queue = fifo.SyncFIFOBuffered(
            width=Shape.cast(self._payload_shape).width, depth=self._depth)
        m.d.comb += [
            queue.w_data.eq(self.i.payload),
            queue.w_en.eq(self.i.valid),
            self.i.ready.eq(queue.w_rdy),
            self.o.payload.eq(queue.r_data),
            self.o.valid.eq(queue.r_rdy),
            queue.r_en.eq(self.o.ready),
            self.level.eq(queue.level),
        ]

        return m


class CreditFIFO(_Queue):
    """First-in, first-out queue for a writer that never overflows it (it holds a credit per
    free entry), so its write side has no full check.

    In :class:`StreamFIFO` the memory's write enable is ``i.valid & (level != depth)``: the
    level compare sits between the write strobe and every storage cell, and that path limited an
    8x8 systolic array's output queue to 190 MHz on an ECP5-45F. Here the write enable is
    ``i.valid`` itself, straight from the writer's register to the storage.

    Parameters
    ----------
    payload_shape : :class:`~amaranth.hdl.ShapeLike`
        Shape of the stream payload.
    depth : :class:`int`
        Number of items the queue holds: the writer may have at most that many in it at once
        (transferred on ``i`` and not yet on ``o``); at least 1.
    local_reset : :class:`bool`
        Empty the queue on ``reset`` instead of the domain's reset, so that the domain's reset
        net, which spans the design, does not reach it: a register beside the queue can drive
        ``reset``.

    Interface attributes
    --------------------
    i : ``In(stream.Signature(payload_shape))``
        Items to enqueue. ``i.ready`` is always high: the writer must not send an item while
        ``depth`` are held, or the oldest unread one is overwritten.
    o : ``Out(stream.Signature(payload_shape))``
        The same items, in the same order. ``o.valid`` and ``o.payload`` are register outputs.
    reset : ``In(1)``, only with ``local_reset``
        Empties the queue at the next clock edge.

    Latency is 2 cycles from ``i`` to ``o`` on an empty queue, throughput one transfer per
    cycle, as for :class:`StreamFIFO` with ``depth >= 3``.
    """

    def __init__(self, payload_shape, *, depth, local_reset=False):
        if not isinstance(local_reset, bool):
            raise TypeError(f"CreditFIFO.local_reset must be a bool, not {local_reset!r}")
        self._local_reset = local_reset
        super().__init__("CreditFIFO", payload_shape, depth, lambda shape, depth: {
            "i": In(stream.Signature(shape, always_ready=True)),
            "o": Out(stream.Signature(shape)),
            **({"reset": In(1)} if local_reset else {}),
        })

    @property
    def local_reset(self):
        """Whether ``reset``, not the domain's reset, empties the queue."""
        return self._local_reset

    def elaborate(self, platform):
        m = Module()
        depth = self._depth

        def advance(pointer):
            return Mux(pointer == depth - 1, 0, pointer + 1)

        m.submodules.storage = storage = Memory(shape=self._payload_shape, depth=depth, init=[])
        write = storage.write_port()
        # Not transparent: an item is read at the earliest in the cycle after its write.
        read = storage.read_port()
        local = self._local_reset
        write_addr = Signal(range(depth), reset_less=local)
        read_addr = Signal(range(depth), reset_less=local)
        m.d.comb += [write.addr.eq(write_addr), write.data.eq(self.i.payload),
                     write.en.eq(self.i.valid)]
        with m.If(self.i.valid):
            m.d.sync += write_addr.eq(advance(write_addr))

        # Items in storage not yet read into the output register. Up to _THERMOMETER_DEPTH
        # entries, as a thermometer code (bit k: more than k items), so that each bit's next
        # value is one LUT from its neighbours: no adder or comparator anywhere; deeper, where a
        # flip-flop per entry costs more than the carry chain, as a binary count. A read is
        # counted one cycle late (``fetched``: the count then holds one item more), so that the
        # count's clock enable comes from flip-flops only, and ``o.ready``, which may come from
        # far away, reaches the enables of the read side through the one LUT of ``fetch``.
        thermometer = depth <= _THERMOMETER_DEPTH
        stored = Signal(depth + 1 if thermometer else range(depth + 2), reset_less=local)
        fetched = Signal(reset_less=local)
        valid = Signal(reset_less=local)
        fetch = Signal()
        m.d.sync += fetched.eq(fetch)
        more_than = (lambda k: stored[k]) if thermometer else (lambda k: stored > k)
        m.d.comb += [
            fetch.eq(Mux(fetched, more_than(1), more_than(0)) & (~valid | self.o.ready)),
            read.addr.eq(read_addr), read.en.eq(fetch),
            self.o.payload.eq(read.data),
            self.o.valid.eq(valid),
        ]
        with m.If(self.i.valid & ~fetched):
            m.d.sync += stored.eq((stored << 1) | 1 if thermometer else stored + 1)
        with m.Elif(~self.i.valid & fetched):
            m.d.sync += stored.eq(stored >> 1 if thermometer else stored - 1)
        with m.If(fetch):
            m.d.sync += [read_addr.eq(advance(read_addr)), valid.eq(1)]
        with m.Elif(self.o.ready):
            m.d.sync += valid.eq(0)
        if local:
            with m.If(self.reset):
                m.d.sync += [r.eq(0) for r in (write_addr, read_addr, stored, fetched, valid)]
        return m
