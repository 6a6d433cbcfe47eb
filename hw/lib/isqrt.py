"""Pipelined integer square root with remainder.

Digit-by-digit (restoring) square root, one root bit per stage: each stage brings down the next
two radicand bits and subtracts ``4 root + 1`` from the partial remainder when it fits. The
remainder comes out with the root, so ``ceil(sqrt(x)) = root + (remainder != 0)`` is exact.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .config import check_int
from .divider import pipeline_latency


__all__ = ["SquareRoot"]


class SquareRoot(wiring.Component):
    """Pipelined ``root = floor(sqrt(x))`` and ``remainder = x - root**2``.

    ``ceil(width / 2)`` steps, one root bit each, with a register after every
    ``stages_per_register`` steps and after the last: :attr:`latency` cycles from ``x`` to the
    results, one root accepted per cycle. There is no enable: the pipeline always advances.

    Parameters
    ----------
    width : int
        Width of the radicand ``x`` (unsigned).
    stages_per_register : int
        Steps between pipeline registers.

    Interface attributes
    --------------------
    x : In(unsigned(width))
        Radicand.
    root : Out(unsigned(ceil(width / 2)))
        ``floor(sqrt(x))``, :attr:`latency` cycles after ``x``.
    remainder : Out(unsigned(ceil(width / 2) + 1))
        ``x - root**2`` (at most ``2 root``).

    Raises
    ------
    ValueError
        For a width or count out of range, naming the parameter.
    """

    def __init__(self, *, width, stages_per_register=1):
        check_int("width", width, min=1, owner="SquareRoot")
        check_int("stages_per_register", stages_per_register, min=1, owner="SquareRoot")
        self._width = width
        self._stages_per_register = stages_per_register
        self._root_bits = -(-width // 2)
        super().__init__({
            "x": In(unsigned(width)),
            "root": Out(unsigned(self._root_bits)),
            "remainder": Out(unsigned(self._root_bits + 1)),
        })

    @property
    def root_bits(self):
        """Width of ``root``."""
        return self._root_bits

    @property
    def latency(self):
        """Cycles from ``x`` to ``root``/``remainder``."""
        return pipeline_latency(self._root_bits, self._stages_per_register)

    def elaborate(self, platform):
        m = Module()
        bits = self._root_bits
        radicand = Signal(2 * bits, name="radicand")
        m.d.comb += radicand.eq(self.x)
        rem = Const(0, bits + 1)
        root = Const(0, bits)
        for n in range(bits):
            # The remainder stays <= 2 root, so bits + 1 bits hold it and bits + 3 its shift.
            shifted = Cat(radicand[2 * (bits - 1 - n):2 * (bits - n)], rem)
            trial = Cat(Const(1, 2), root)
            diff = shifted - trial
            take = ~diff[-1]
            next_rem = Signal(bits + 1, name=f"rem_{n}")
            next_root = Signal(bits, name=f"root_{n}")
            m.d.comb += [
                next_rem.eq(Mux(take, diff, shifted)),
                next_root.eq(Cat(take, root[:-1])),
            ]
            rem, root = next_rem, next_root
            if (n + 1) % self._stages_per_register == 0 or n + 1 == bits:
                rem_reg = Signal.like(rem, name=f"rem_s{n}", reset_less=True)
                root_reg = Signal.like(root, name=f"root_s{n}", reset_less=True)
                radicand_reg = Signal.like(radicand, name=f"radicand_s{n}", reset_less=True)
                m.d.sync += [rem_reg.eq(rem), root_reg.eq(root), radicand_reg.eq(radicand)]
                rem, root, radicand = rem_reg, root_reg, radicand_reg
        m.d.comb += [self.root.eq(root), self.remainder.eq(rem)]
        return m
