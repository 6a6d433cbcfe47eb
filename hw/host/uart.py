"""8N1 UART transmitter and receiver with byte streams, for the host link.

Both take the baud rate as a ``divisor``: clock cycles per bit, ``round(clock_hz / baud)``
(:attr:`hw.host.config.HostConfig.divisor`). A character is a start bit (0), 8 data bits least
significant first, and a stop bit (1); the idle line is 1.
"""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from ..lib.config import check_int


__all__ = ["UARTTx", "UARTRx"]

#: Bits of a character on the line: start, 8 data, stop.
_CHAR_BITS = 10


class _UARTSide(wiring.Component):
    # Both sides take the same ``divisor``; the receiver needs a larger minimum.
    _MIN_DIVISOR = 1

    def __init__(self, *, divisor, members):
        self._divisor = check_int("divisor", divisor, min=self._MIN_DIVISOR,
                                  owner=type(self).__name__)
        super().__init__(members)

    @property
    def divisor(self):
        """Clock cycles per bit."""
        return self._divisor


class UARTTx(_UARTSide):
    """UART transmitter: bytes from a stream onto the ``tx`` pin, back to back.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, at least 1.

    Interface attributes
    --------------------
    i : ``In(stream.Signature(8))``
        Bytes to send, in order. ``i.ready`` is high while the line is idle and in the last
        cycle of each stop bit, so a byte that is waiting is taken then and its start bit
        follows the stop bit with no idle time: a continuous stream fills the line exactly
        (one character every ``10 * divisor`` cycles).
    tx : ``Out(1)``
        The serial line, a register (1 when idle). A byte taken at clock edge ``t`` starts its
        start bit at ``t`` (visible from the cycle after) and each bit lasts ``divisor`` cycles.
    """

    def __init__(self, *, divisor):
        super().__init__(divisor=divisor, members={
            "i": In(stream.Signature(8)),
            "tx": Out(1, init=1),
        })

    def elaborate(self, platform):
        m = Module()
        d = self._divisor

        # Bits still to put on the line after the one ``tx`` shows; ones shift in behind, so the
        # line returns to idle by itself after the stop bit.
        pending = Signal(9, init=0x1FF)
        bits_left = Signal(range(_CHAR_BITS + 1))    # including the bit shown; 0 when idle
        timer = Signal(range(d))                      # cycles left of the bit shown, minus one
        bit_done = timer == 0

        m.d.comb += self.i.ready.eq((bits_left == 0) | ((bits_left == 1) & bit_done))

        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [
                self.tx.eq(0),
                pending.eq(Cat(self.i.payload, 1)),
                bits_left.eq(_CHAR_BITS),
                timer.eq(d - 1),
            ]
        with m.Elif(bits_left != 0):
            with m.If(bit_done):
                m.d.sync += [
                    self.tx.eq(pending[0]),
                    pending.eq(Cat(pending[1:], 1)),
                    bits_left.eq(bits_left - 1),
                    timer.eq(d - 1),
                ]
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        return m


class UARTRx(_UARTSide):
    """UART receiver: characters on the ``rx`` pin to a byte stream, with error detection.

    ``rx`` passes a two-flop synchronizer (it is asynchronous to the clock). A falling edge on the
    idle line starts a character; each bit is sampled once, in the middle (``divisor // 2``
    cycles after the edge as seen by the synchronizer, then every ``divisor`` cycles). A start
    bit that is high again at its middle was a glitch and is ignored.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, at least 4 so that the middle is well away from the edges.

    Interface attributes
    --------------------
    rx : ``In(1)``
        The serial line (asynchronous; 1 when idle).
    o : ``Out(stream.Signature(8))``
        Bytes received, in order. ``o.valid``/``o.payload`` are registers, set in the cycle
        after the middle of the stop bit: ``9 * divisor + divisor // 2 + 3`` cycles after the
        falling edge of the start bit on the pin. A line cannot wait: the consumer must
        take each byte within one character time (``10 * divisor`` cycles), or the next byte
        is dropped and ``overrun`` pulses.
    framing_error : ``Out(1)``
        One-cycle pulse when a stop bit is sampled low. The byte is dropped, and the receiver
        waits for the line to go high again before looking for a start bit, so that a break
        (line held low) gives one error, not a stream of 0x00 bytes.
    overrun : ``Out(1)``
        One-cycle pulse when a byte completes while the previous one is still offered on ``o``;
        the new byte is dropped.
    """

    _MIN_DIVISOR = 4

    def __init__(self, *, divisor):
        super().__init__(divisor=divisor, members={
            "rx": In(1, init=1),
            "o": Out(stream.Signature(8)),
            "framing_error": Out(1),
            "overrun": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        d = self._divisor

        rx = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, rx, init=1)

        timer = Signal(range(d))
        data = Signal(8)
        bit = Signal(range(8))
        sample = timer == 0

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        m.d.sync += [self.framing_error.eq(0), self.overrun.eq(0)]

        with m.If(~sample):
            m.d.sync += timer.eq(timer - 1)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    # The edge lies within the cycle before this one: the middle of the start
                    # bit is d // 2 cycles from here.
                    m.d.sync += timer.eq(d // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(sample):
                    with m.If(rx):
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [timer.eq(d - 1), bit.eq(0)]
                        m.next = "DATA"
            with m.State("DATA"):
                with m.If(sample):
                    m.d.sync += [data.eq(Cat(data[1:], rx)), bit.eq(bit + 1), timer.eq(d - 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(sample):
                    with m.If(~rx):
                        m.d.sync += self.framing_error.eq(1)
                        m.next = "BREAK"
                    with m.Elif(self.o.valid & ~self.o.ready):
                        m.d.sync += self.overrun.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [self.o.payload.eq(data), self.o.valid.eq(1)]
                        m.next = "IDLE"
            with m.State("BREAK"):
                with m.If(rx):
                    m.next = "IDLE"
        return m
