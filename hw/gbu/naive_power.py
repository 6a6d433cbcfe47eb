"""The naive dataflow's direct power of one pixel (DESIGN.md 7.2; bit-exact with
``golden.gbu_model._naive_power``): ``power = round(-(a dx^2 + 2 b dx dy + c dy^2) / 2)`` in
``acc_format``, saturated, with ``dx = mx - x``, ``dy = my - row`` in ``coord_format``."""

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib.wiring import In, Out

from ..lib.component import ConfiguredComponent, check_config
from ..lib.config import QFormat
from ..lib.fixed import fixed_shape, requantize
from .config import GBUConfig
from .exp_unit import delay


__all__ = ["NaivePower"]


class NaivePower(ConfiguredComponent):
    """Direct per-pixel power, one pixel per cycle, a fixed pipeline of :attr:`latency` = 5.

    Every product is a plain ``*`` between registers (on ECP5, Yosys maps each to whole
    MULT18X18D cells): the ablation baseline pays for the multipliers that IRSS avoids.

    Parameters
    ----------
    config : GBUConfig

    Interface attributes
    --------------------
    mx, my : In(signed(coord_format.width))
        Tile-relative mean, raw.
    a, b, c : In(signed(conic_format.width))
        Conic, raw.
    x, row : In(unsigned(4))
        Pixel column and row within the tile.
    power : Out(signed(acc_format.width))
        Raw power of the inputs offered :attr:`latency` cycles earlier.
    """

    def __init__(self, *, config):
        check_config("NaivePower", config, GBUConfig)
        coord, conic = fixed_shape(config.coord_format), fixed_shape(config.conic_format)
        super().__init__(config, {
            "mx": In(coord), "my": In(coord),
            "a": In(conic), "b": In(conic), "c": In(conic),
            "x": In(unsigned(4)), "row": In(unsigned(4)),
            "power": Out(fixed_shape(config.acc_format)),
        })


    @property
    def latency(self):
        return 5

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        fq, fc = cfg.coord_format.f_bits, cfg.conic_format.f_bits

        def reg(value, name):
            r = Signal.like(value, name=name, reset_less=True)
            m.d.sync += r.eq(value)
            return r

        dx = reg(self.mx - (self.x << fq), "dx")
        dy = reg(self.my - (self.row << fq), "dy")
        dxx, dxy, dyy = reg(dx * dx, "dxx"), reg(dx * dy, "dxy"), reg(dy * dy, "dyy")
        a, b, c = (delay(m, v, 2, n) for v, n in ((self.a, "a"), (self.b, "b"), (self.c, "c")))
        terms = [reg(a * dxx, "adxx"), reg(b * dxy, "bdxy"), reg(c * dyy, "cdyy")]
        q = reg(terms[0] + (terms[1] << 1) + terms[2], "q")
        neg = Signal(signed(len(q) + 1))
        m.d.comb += neg.eq(-q)
        # -q has fc + 2 fq fraction bits; the halving adds one more.
        frac = fc + 2 * fq + 1
        m.d.sync += self.power.eq(requantize(neg, QFormat(len(neg) - frac, frac, True),
                                             cfg.acc_format, rounding=cfg.rounding,
                                             overflow="saturate"))
        return m
