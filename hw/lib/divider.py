"""Pipelined integer divider with floor quotient and remainder, and the rounding of its quotient.

Long division, one quotient bit per stage: each stage shifts one numerator bit into the partial
remainder and subtracts the divisor when it fits (restoring division). The remainder comes out
with the quotient, so any rounding mode can be applied afterwards (:func:`round_up`) and a
ceiling is ``quotient + (remainder != 0)``.
"""

from amaranth import hdl
from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .config import ROUNDING_MODES, check_bool, check_choice, check_int


__all__ = ["Divider", "round_up", "pipeline_latency"]


def pipeline_latency(steps, stages_per_register):
    """Cycles of a chain of ``steps`` combinational steps with a register after every
    ``stages_per_register`` steps and after the last one."""
    return -(-steps // stages_per_register)


def round_up(quotient, remainder, den, rounding):
    """The increment (0 or 1) that rounds ``num / den`` with ``rounding``, given the floor
    quotient and the remainder (``0 <= remainder < den``) of :class:`Divider`: the rounded
    quotient is ``quotient + round_up(...)``.

    The semantics are those of :data:`~hw.lib.config.ROUNDING_MODES`: the remainder is compared
    with half the divisor, ties go up (``half_up``), away from zero (``half_away``: the sign of
    the floor quotient is the sign of ``num``) or to the even quotient (``half_even``). Kept
    apart from the addition so that a pipeline can register it in between.

    Returns
    -------
    :class:`~amaranth.hdl.Value`
        Combinational, 1 bit.
    """
    check_choice("rounding", rounding, ROUNDING_MODES, owner="round_up")
    if rounding == "trunc":
        return Const(0, 1)
    twice = Cat(Const(0, 1), remainder)
    above = twice > den
    tie = twice == den
    if rounding == "half_up":
        return above | tie
    if rounding == "half_away":
        negative = quotient[-1] if quotient.shape().signed else Const(0, 1)
        return above | (tie & ~negative)
    return above | (tie & quotient[0])


class Divider(wiring.Component):
    """Pipelined floor division ``num = quotient * den + remainder``, ``0 <= remainder < den``.

    ``1 + quotient_bits`` steps (a range check, then one quotient bit each), plus one for a
    signed numerator (the sign correction), with a register after every ``stages_per_register``
    steps and after the last: :attr:`latency` cycles from ``num``/``den`` to the results, one
    division accepted per cycle. There is no enable: the pipeline always advances and the
    caller tracks which results are valid.

    A negative numerator is divided as ``~num = -num - 1 >= 0``: if ``~num = Q den + R`` then
    ``num = (-Q - 1) den + (den - 1 - R)``, so the quotient is ``~Q`` and only the remainder
    needs a subtraction.

    Parameters
    ----------
    num_width : int
        Width of ``num``.
    den_width : int
        Width of ``den`` (unsigned, must be non-zero when the result is used).
    quotient_bits : int or None
        Bits of the quotient's magnitude computed (default: enough for any quotient). A quotient
        whose magnitude needs more (``q >= 2**quotient_bits`` or ``q < -2**quotient_bits``) sets
        ``overflow`` instead, so a caller that saturates pays only for the bits it keeps.
    signed : bool
        Whether ``num`` is signed (two's complement).
    stages_per_register : int
        Steps between pipeline registers (1 = a register after every step).

    Interface attributes
    --------------------
    num : In(signed(num_width) or unsigned(num_width))
        Numerator.
    den : In(unsigned(den_width))
        Divisor, ``> 0``.
    quotient : Out(signed(quotient_bits + 1) or unsigned(quotient_bits))
        Floor quotient, valid when ``overflow`` is low; :attr:`latency` cycles after ``num``.
        When signed, its sign bit is the sign of ``num`` even on overflow.
    remainder : Out(unsigned(den_width))
        ``num - quotient * den``, valid when ``overflow`` is low.
    overflow : Out(1)
        The quotient does not fit ``quotient_bits``; its sign is that of ``num``.
    divisor : Out(unsigned(den_width))
        ``den`` of the same division, delayed with it (for :func:`round_up`).

    Raises
    ------
    ValueError
        For a width or count out of range, naming the parameter.
    """

    def __init__(self, *, num_width, den_width, quotient_bits=None, signed=False,
                 stages_per_register=1):
        check_bool("signed", signed, owner="Divider")
        check_int("num_width", num_width, min=2 if signed else 1, owner="Divider")
        check_int("den_width", den_width, min=1, owner="Divider")
        magnitude = num_width - 1 if signed else num_width
        if quotient_bits is None:
            quotient_bits = magnitude
        check_int("quotient_bits", quotient_bits, min=1, max=magnitude, owner="Divider")
        check_int("stages_per_register", stages_per_register, min=1, owner="Divider")
        self._num_width = num_width
        self._den_width = den_width
        self._quotient_bits = quotient_bits
        self._signed = signed
        self._stages_per_register = stages_per_register
        super().__init__({
            "num": In(hdl.signed(num_width) if signed else unsigned(num_width)),
            "den": In(unsigned(den_width)),
            "quotient": Out(hdl.signed(quotient_bits + 1) if signed else
                            unsigned(quotient_bits)),
            "remainder": Out(unsigned(den_width)),
            "overflow": Out(1),
            "divisor": Out(unsigned(den_width)),
        })

    @property
    def signed(self):
        """Whether ``num`` is signed."""
        return self._signed

    @property
    def quotient_bits(self):
        """Bits of the quotient's magnitude."""
        return self._quotient_bits

    @property
    def steps(self):
        """Combinational steps of the pipeline."""
        return 1 + self._quotient_bits + int(self._signed)

    @property
    def latency(self):
        """Cycles from ``num``/``den`` to ``quotient``/``remainder``/``overflow``."""
        return pipeline_latency(self.steps, self._stages_per_register)

    def elaborate(self, platform):
        m = Module()
        qb, dw = self._quotient_bits, self._den_width
        step = 0

        def advance(*values):
            # A register after every ``stages_per_register`` steps and after the last.
            nonlocal step
            step += 1
            if step % self._stages_per_register and step != self.steps:
                return values
            regs = []
            for value in values:
                reg = Signal.like(value, name=f"{value.name}_s{step}", reset_less=True)
                m.d.sync += reg.eq(value)
                regs.append(reg)
            return tuple(regs)

        def named(value, name):
            sig = Signal(value.shape(), name=name)
            m.d.comb += sig.eq(value)
            return sig

        magnitude = self._num_width - int(self._signed)
        if self._signed:
            negative = self.num[-1]
            folded = (self.num ^ negative.replicate(self._num_width))[:magnitude]
        else:
            negative = Const(0, 1)
            folded = self.num
        # The quotient fits ``qb`` bits exactly when the numerator's high part is below ``den``;
        # that part is then the first partial remainder.
        high = folded[qb:]
        fits = (high < self.den) if len(high) else Const(1, 1)
        rem = named(high[:dw] if len(high) else Const(0, dw), "rem_init")
        low = named(folded[:qb], "low")
        quot = Signal(qb, name="quot_init")
        den = named(self.den, "den")
        neg = named(negative, "neg")
        ovf = named(~fits, "ovf")
        rem, low, quot, den, neg, ovf = advance(rem, low, quot, den, neg, ovf)

        for n in range(qb):
            shifted = Cat(low[qb - 1 - n], rem)
            diff = shifted - den
            take = ~diff[-1]
            rem = named(Mux(take, diff[:dw], shifted[:dw]), f"rem_{n}")
            quot = named(Cat(take, quot[:-1]), f"quot_{n}")
            rem, low, quot, den, neg, ovf = advance(rem, low, quot, den, neg, ovf)

        if self._signed:
            wide = Cat(quot, Const(0, 1)).as_signed()
            quot = named(Mux(neg, ~wide, wide), "quot_signed")
            # den - 1 - rem = den + ~rem modulo 2**dw: one carry chain.
            rem = named(Mux(neg, (den + ~rem)[:dw], rem), "rem_signed")
            quot, rem, den, ovf = advance(quot, rem, den, ovf)

        m.d.comb += [
            self.quotient.eq(quot),
            self.remainder.eq(rem),
            self.overflow.eq(ovf),
            self.divisor.eq(den),
        ]
        return m
