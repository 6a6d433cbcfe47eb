"""Per-channel requantization of accumulator vectors to int8, the engine's output stage."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from ..lib.component import ConfiguredComponent, check_config
from .config import (MULTIPLIER_LATENCY, REQUANT_CHUNK_BITS, REQUANT_DSP_BITS, SHIFT_BITS,
                     GemmConfig, tree_levels)
from .dot_product import _adder_tree
from .multiplier import Multiplier
from .systolic import _delay


__all__ = ["ChannelRequantizer"]

_INT8 = (-128, 127)


def _thermometer(value, width):
    """``width`` bits, bit ``j`` high where ``j < value``."""
    return Cat(*(value > j for j in range(width)))


class ChannelRequantizer(ConfiguredComponent):
    """``sat8(relu(round(acc[n] * multiplier[n] / 2**shift[n])))`` for each of ``cols`` lanes,
    bit-exact with :func:`golden.gemm.requantize` (rounding ``config.rounding``).

    A pipeline that never stops (no clock enable anywhere, so nothing fans out from the
    consumer's ``ready``): the caller keeps the consumer able to take every result, e.g. with a
    :class:`~hw.lib.stream.CreditFIFO` and credits counted against it.

    Each lane multiplies with one DSP (:class:`~hw.gemm.multiplier.Multiplier`) for the top
    :data:`~hw.gemm.config.REQUANT_DSP_BITS` bits of ``acc`` and LUT multipliers for the bits
    below, :data:`~hw.gemm.config.REQUANT_CHUNK_BITS` (unsigned) at a time (so an 8x8 int8
    engine and its eight requantization lanes fit the 72 DSPs of a 45F), sums the partial
    products in a pipelined adder tree (one register per level), then takes the floor quotient
    with its guard and sticky bits, rounds, and saturates, a register stage each.

    Parameters
    ----------
    config : GemmConfig
        ``cols`` lanes of ``acc_bits`` accumulators and ``scale_bits`` multipliers.

    Interface attributes
    --------------------
    i : In(stream.Signature(StructLayout({...}), always_ready=True))
        ``acc``: ArrayLayout(signed(acc_bits), cols); ``multiplier``:
        ArrayLayout(signed(scale_bits), cols); ``shift``: ArrayLayout(unsigned(6), cols),
        0..62 (63 acts as 62: both give 0); ``relu``: 1. Taken in every cycle ``valid`` is high.
    o : Out(stream.Signature(ArrayLayout(signed(8), cols), always_ready=True))
        The int8 results, in order, each :attr:`latency` cycles after its ``i`` transfer; the
        consumer must take it in that cycle.
    """

    def __init__(self, *, config):
        check_config("ChannelRequantizer", config, GemmConfig)
        cols = config.cols
        super().__init__(config, {
            "i": In(stream.Signature(data.StructLayout({
                "acc": data.ArrayLayout(signed(config.acc_bits), cols),
                "multiplier": data.ArrayLayout(signed(config.scale_bits), cols),
                "shift": data.ArrayLayout(unsigned(SHIFT_BITS), cols),
                "relu": 1,
            }), always_ready=True)),
            "o": Out(stream.Signature(data.ArrayLayout(signed(8), cols), always_ready=True)),
        })

    @property
    def latency(self):
        """Cycles from an ``i`` transfer to its result on ``o``:
        :attr:`GemmConfig.requant_latency <hw.gemm.config.GemmConfig.requant_latency>`."""
        return self._config.requant_latency

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        width = cfg.acc_bits + cfg.scale_bits
        low = max(0, cfg.acc_bits - REQUANT_DSP_BITS)
        chunks = cfg.requant_chunks
        product_latency = MULTIPLIER_LATENCY + tree_levels(1 + chunks)
        payload = self.i.payload
        valid = _delay(m, self.i.valid, self.latency, "valid")
        relu = _delay(m, payload.relu, self.latency - 1, "relu", reset_less=True)
        m.d.comb += self.o.valid.eq(valid)

        for n in range(cfg.cols):
            acc, mult = payload.acc[n], payload.multiplier[n]
            # The DSP's operand is the accumulator's signed top, the LUT multipliers' the
            # unsigned pieces below it, zero-extended into a 4-bit signed operand.
            pieces = [(acc[low:].as_signed(), cfg.acc_bits - low, "dsp", low)]
            for c in range(chunks):
                bits = acc[c * REQUANT_CHUNK_BITS:min(low, (c + 1) * REQUANT_CHUNK_BITS)]
                pieces.append((Cat(bits, Const(0, REQUANT_CHUNK_BITS + 1 - len(bits))),
                               REQUANT_CHUNK_BITS + 1, "lut", c * REQUANT_CHUNK_BITS))
            terms = []
            for p, (operand, bits, kind, offset) in enumerate(pieces):
                mul = Multiplier(a_bits=cfg.scale_bits, b_bits=bits, kind=kind)
                m.submodules[f"mul_{n}_{p}"] = mul
                m.d.comb += [mul.a.eq(mult), mul.b.eq(operand),
                             mul.a_en.eq(1), mul.b_en.eq(1), mul.p_en.eq(1)]
                terms.append(mul.p.shift_left(offset))
            product = _adder_tree(m, terms, lambda level: width, 1, f"product_{n}")

            # The shift travels beside the product; one stage early it becomes the mask of the
            # remainder bits of `2 * product`, so the sticky bit is an AND-OR of flip-flops.
            shift = _delay(m, payload.shift[n], product_latency - 1, f"shift_{n}",
                           reset_less=True)
            twice = Cat(Const(0, 1), product).as_signed()
            mask = Signal(len(twice), name=f"mask_{n}", reset_less=True)
            shift_p = Signal(SHIFT_BITS, name=f"shift_{n}_p", reset_less=True)
            m.d.sync += [mask.eq(_thermometer(shift, len(twice))), shift_p.eq(shift)]

            # `(2 * x) >> s` is the floor quotient with the guard bit (the first bit below the
            # point) appended; the sticky bit says whether any remainder bit below it is set.
            quotient = Signal(signed(len(twice)), name=f"quotient_{n}", reset_less=True)
            sticky = Signal(name=f"sticky_{n}", reset_less=True)
            m.d.sync += [quotient.eq(twice >> shift_p), sticky.eq((twice & mask).any())]

            q, guard = quotient[1:].as_signed(), quotient[0]
            tie = ~q[-1] if cfg.rounding == "half_away" else q[0]
            rounded = Signal(signed(width), name=f"rounded_{n}", reset_less=True)
            m.d.sync += rounded.eq(q + (guard & (sticky | tie)))

            y = Mux(relu & rounded[-1], 0, rounded)
            m.d.sync += self.o.payload[n].eq(Mux(y > _INT8[1], _INT8[1],
                                                 Mux(y < _INT8[0], _INT8[0], y)))
        return m
