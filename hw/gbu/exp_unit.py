"""The exp and alpha stage of a row shader lane, and the pipelined arithmetic it shares with the
lane (DESIGN.md 7.2; bit-exact with :func:`golden.gbu_model.exp_unit`).

``n = -power``; ``i = n >> s`` with ``s = acc_format.f_bits - exp_addr_bits + 3``; ``e = E[i]``
(``+ round((E[i+1] - E[i]) (n mod 2**s) / 2**s)`` when interpolating) while ``i <
2**exp_addr_bits``, else 0; ``alpha = min(alpha_max, round(o e))``.
"""

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..gemm.multiplier import DSP_WIDTH, registered_dsp_product
from ..lib.component import ConfiguredComponent, check_config
from ..lib.config import QFormat
from ..lib.fixed import requantize
from .config import GBUConfig


__all__ = ["ExpUnit", "delay", "rounded_shift", "rounding_threshold", "saturated",
           "registered_product", "PRODUCT_LATENCY"]

#: Cycles of :func:`registered_product`.
PRODUCT_LATENCY = 2


def delay(m, value, cycles, name):
    """``value`` ``cycles`` cycles later through a chain of registers (``value`` for 0). Data
    registers are ``reset_less``: a valid bit travelling beside them says what they hold."""
    for n in range(cycles):
        reg = Signal.like(value, name=f"{name}_d{n}", reset_less=True)
        m.d.sync += reg.eq(value)
        value = reg
    return value


def registered_product(m, platform, a, b, name):
    """``a * b`` of two unsigned values, :data:`PRODUCT_LATENCY` cycles later.

    ``a`` and ``b`` are cut into 18-bit chunks whose products are registered separately, on
    ECP5 in the output register of a MULT18X18D each
    (:func:`~hw.gemm.multiplier.registered_dsp_product`), and summed into a second register, so
    that no path holds both a route into a DSP and one out of it, or a DSP and a wide carry
    chain. ``a`` and ``b`` should come from registers.
    """
    partials = [registered_dsp_product(m, platform, a[i:i + DSP_WIDTH], b[j:j + DSP_WIDTH],
                                       f"{name}_p{i}_{j}").shift_left(i + j)
                for i in range(0, len(a), DSP_WIDTH) for j in range(0, len(b), DSP_WIDTH)]
    product = Signal(len(a) + len(b), name=name, reset_less=True)
    m.d.sync += product.eq(sum(partials))
    return product


def saturated(value, fmt):
    """A non-negative ``value`` clamped to the unsigned format ``fmt``: its ``max_int`` is
    ``2**width - 1``, so the test is an OR of the bits above the width, not a comparator's carry
    chain after the adder that makes ``value`` (in an 8-lane GBU at 89.1 MHz the lanes' ``C``
    update, adder then comparator, was the critical path)."""
    if fmt.signed:
        raise ValueError(f"saturated: expected an unsigned format, got {fmt}")
    width = fmt.width
    if len(value) <= width:
        return value
    return Mux(value[width:].any(), fmt.max_int, value[:width])


def rounded_shift(value, shift, rounding):
    """``round(value / 2**shift)`` with ``rounding``, as :func:`golden.gbu_model.round_div`:
    exact, one bit wider than the kept bits so that rounding up never wraps (``value`` shifted
    left for ``shift <= 0``)."""
    if shift <= 0:
        return value.shift_left(-shift)
    is_signed = value.shape().signed
    kept = len(value) - shift
    return requantize(value, QFormat(kept, shift, is_signed),
                      QFormat(max(kept + 1, 2), 0, is_signed), rounding=rounding, overflow="wrap")


def rounding_threshold(bound, shift, rounding):
    """The least ``x >= 0`` with ``rounded_shift(x, shift, rounding) >= bound``.

    Rounding is monotonic, so for a non-negative ``value`` the test ``rounded_shift(value) <
    bound`` is ``value < rounding_threshold(bound, ...)``: a compare beside the rounding adder
    instead of a second carry chain after it (in an 8-lane GBU at 91.6 MHz the lanes' ``T <
    t_min`` test on the rounded ``T``, then the ``done`` bit it sets, was the critical path).
    """
    if bound <= 0:
        return 0
    if shift <= 0:
        return -(-bound >> -shift)                  # ceil(bound / 2**-shift)
    exact = bound << shift
    if rounding == "trunc":
        return exact
    half = exact - (1 << (shift - 1))               # rounds to bound - 1 or bound
    if rounding == "half_even" and bound % 2 == 1:  # the tie goes to the even bound - 1
        return half + 1
    return half


class ExpUnit(ConfiguredComponent):
    """``alpha = min(alpha_max, round(o exp(power)))`` and the skip decision, one per cycle.

    A fixed pipeline without stalls: the value offered in cycle ``t`` comes out in cycle
    ``t + latency``; a valid bit travelling beside it is the caller's.

    Parameters
    ----------
    config : GBUConfig
        Formats, exp table (``exp_addr_bits``, ``exp_interp``), thresholds, rounding.

    Interface attributes
    --------------------
    power : In(signed(acc_format.width))
        Raw ``acc_format`` power.
    o : In(unsigned(alpha_format.width))
        Raw opacity.
    alpha : Out(unsigned(alpha_format.width))
        The model's alpha when ``take``; 0 for a positive power (whose alpha is never used).
    take : Out(1)
        ``power <= 0`` and ``alpha >= alpha_min``: the pair is not skipped.

    The exp table (``E`` and ``E[i] - E[i+1]`` side by side, one word per segment) is a ROM read
    through a registered port, so it maps to block RAM.
    """

    def __init__(self, *, config):
        check_config("ExpUnit", config, GBUConfig)
        acc, alpha = config.acc_format, config.alpha_format
        super().__init__(config, {
            "power": In(signed(acc.width)),
            "o": In(unsigned(alpha.width)),
            "alpha": Out(unsigned(alpha.width)),
            "take": Out(1),
        })


    @property
    def _shift(self):
        return self._config.acc_format.f_bits - self._config.exp_addr_bits + 3

    @property
    def _interp(self):
        return self._config.exp_interp and self._shift > 0

    @property
    def latency(self):
        """Cycles from ``power``/``o`` to ``alpha``/``take``: 11 with interpolation, else 7."""
        return 11 if self._interp else 7

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        k, s = cfg.exp_addr_bits, self._shift
        aw = cfg.alpha_format.width
        table = cfg.exp_table

        # Stage 1: table address, interpolation fraction, and whether the table covers n.
        n = Signal(signed(len(self.power) + 1))
        m.d.comb += n.eq(-self.power)
        addr = Signal(k, reset_less=True)
        frac = Signal(max(s, 1), reset_less=True)
        inside = Signal()
        o = Signal.like(self.o, reset_less=True)
        m.d.sync += [
            addr.eq(n[s:s + k]),
            frac.eq(n[:s] if s else 0),
            # A positive power gets e = 0 too: its alpha is then 0, below alpha_min >= 1.
            inside.eq(~n[-1] & ((n >> (s + k)) == 0)),
            o.eq(self.o),
        ]

        # Stage 2: the ROM word of segment ``addr`` (registered read port).
        m.submodules.table = rom = Memory(
            shape=unsigned(2 * aw), depth=1 << k,
            init=[table[i] | ((table[i] - table[i + 1]) << aw) for i in range(1 << k)])
        port = rom.read_port()
        m.d.comb += port.addr.eq(addr)
        base, step = port.data[:aw], port.data[aw:]
        frac, inside, o = (delay(m, v, 1, name) for v, name in
                           ((frac, "frac"), (inside, "inside"), (o, "o")))

        if self._interp:
            # Stages 4-5: (E[i] - E[i+1]) frac; stage 6: that / 2**s, rounded as a negative
            # quotient the way the model rounds (E[i+1] - E[i]) frac / 2**s; stage 7: e.
            base_reg = delay(m, base, 1, "base")
            step_reg = delay(m, step, 1, "step")
            frac_reg = delay(m, frac, 1, "frac_r")
            drop = registered_product(m, platform, step_reg, frac_reg, "drop")
            correction = Signal(signed(len(drop) - s + 2), reset_less=True)
            m.d.sync += correction.eq(rounded_shift(-drop, s, cfg.rounding))
            base_reg = delay(m, base_reg, 3, "base")
            inside = delay(m, inside, 4, "inside")
            o = delay(m, o, 4, "o")
            e_value = base_reg + correction
        else:
            e_value = base
        e = Signal(aw + 1, reset_less=True)
        m.d.sync += e.eq(Mux(inside, e_value, 0))
        o = delay(m, o, 1, "o")

        # o e, then its rounding, then the clamp and threshold against the rounded value
        # (min(alpha_max, r) >= alpha_min exactly when r >= alpha_min).
        oe = registered_product(m, platform, o, e, "oe")
        rounded = Signal(len(oe) - cfg.alpha_format.f_bits + 1, reset_less=True)
        m.d.sync += rounded.eq(rounded_shift(oe, cfg.alpha_format.f_bits, cfg.rounding))
        m.d.sync += [
            self.alpha.eq(Mux(rounded > cfg.alpha_max_raw,
                              Const(cfg.alpha_max_raw, aw), rounded)),
            self.take.eq(rounded >= cfg.alpha_min_raw),
        ]
        return m
