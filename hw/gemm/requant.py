"""Per-channel requantization of accumulator vectors to int8, the engine's output stage."""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .config import SHIFT_BITS, GemmConfig


__all__ = ["ChannelRequantizer"]

_INT8 = (-128, 127)


def _round_shift(x, shift, rounding):
    """``round(x / 2**shift)`` of a signed ``x`` for a variable ``shift``, ties ``rounding``.

    Written as :func:`golden.gemm.requantize` defines it (floor quotient, remainder compared
    with one half) rather than as a bias and a shift, so the two are checked against each
    other. A shift of ``len(x)`` or more rounds every ``x`` to 0 (``|x| < 2**(len(x)-1)``
    is less than one half), so it is clamped there.
    """
    width = len(x)
    s = Mux(shift > width, width, shift)
    q = x >> s                    # arithmetic: the floor quotient
    # The remainder and one half as unsigned `width`-bit values, bit by bit (a variable mask
    # written as `(1 << s) - 1` would widen by 2**SHIFT_BITS bits).
    r = Cat(*(x[i] & (i < s) for i in range(width)))
    half = Cat(*(s == i + 1 for i in range(width)))
    tie = (~x[-1]) if rounding == "half_away" else q[0]
    up = (s != 0) & ((r > half) | ((r == half) & tie))
    return q + up


class ChannelRequantizer(wiring.Component):
    """``sat8(relu(round(acc[n] * multiplier[n] / 2**shift[n])))`` for each of ``cols`` lanes,
    bit-exact with :func:`golden.gemm.requantize` (rounding ``config.rounding``).

    Three register stages (product; rounded quotient; ReLU and saturation), all advancing
    together whenever the last holds nothing or ``o`` takes it.

    Parameters
    ----------
    config : GemmConfig
        ``cols`` lanes of ``acc_bits`` accumulators and ``scale_bits`` multipliers.

    Interface attributes
    --------------------
    i : In(stream.Signature(StructLayout({...})))
        ``acc``: ArrayLayout(signed(acc_bits), cols); ``multiplier``:
        ArrayLayout(signed(scale_bits), cols); ``shift``: ArrayLayout(unsigned(6), cols),
        0..62 (63 acts as 62: both give 0); ``relu``: 1.
    o : Out(stream.Signature(ArrayLayout(signed(8), cols)))
        The int8 results, in order, 3 cycles after their ``i`` transfer without backpressure.
    """

    def __init__(self, *, config):
        if not isinstance(config, GemmConfig):
            raise TypeError(f"ChannelRequantizer.config must be a GemmConfig, not {config!r}")
        self._config = config
        cols = config.cols
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "acc": data.ArrayLayout(signed(config.acc_bits), cols),
                "multiplier": data.ArrayLayout(signed(config.scale_bits), cols),
                "shift": data.ArrayLayout(unsigned(SHIFT_BITS), cols),
                "relu": 1,
            }))),
            "o": Out(stream.Signature(data.ArrayLayout(signed(8), cols))),
        })

    @property
    def latency(self):
        """Cycles from an ``i`` transfer to its result on ``o``, without backpressure."""
        return 3

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        width = cfg.acc_bits + cfg.scale_bits
        valid = [Signal(name=f"valid_{n}") for n in range(2)]
        en = ~self.o.valid | self.o.ready
        m.d.comb += self.i.ready.eq(en)
        relu = [Signal(name=f"relu_{n}") for n in range(2)]
        with m.If(en):
            m.d.sync += [valid[0].eq(self.i.valid), valid[1].eq(valid[0]),
                         self.o.valid.eq(valid[1]),
                         relu[0].eq(self.i.payload.relu), relu[1].eq(relu[0])]
        for n in range(cfg.cols):
            product = Signal(signed(width), name=f"product_{n}")
            shift = Signal(SHIFT_BITS, name=f"shift_{n}")
            rounded = Signal(signed(width), name=f"rounded_{n}")
            y = Mux(relu[1] & rounded[-1], 0, rounded)
            with m.If(en):
                m.d.sync += [
                    product.eq(self.i.payload.acc[n] * self.i.payload.multiplier[n]),
                    shift.eq(self.i.payload.shift[n]),
                    rounded.eq(_round_shift(product, shift, cfg.rounding)),
                    self.o.payload[n].eq(Mux(y > _INT8[1], _INT8[1],
                                             Mux(y < _INT8[0], _INT8[0], y))),
                ]
        return m
