# amaranth: UnusedElaboratable=no
"""Divider and round_up in amaranth.sim against Python's floor division and the golden
rounding (golden.gbu_model.round_div): exhaustively for small widths, with hypothesis for wide
ones, for every register spacing and rounding mode."""

import itertools

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator
from hypothesis import given, settings, strategies as st

from golden.gbu_model import round_div
from hw.lib.config import ROUNDING_MODES
from hw.lib.divider import Divider, round_up


def _expected(num, den, quotient_bits):
    q, r = divmod(num, den)
    overflow = not -(1 << quotient_bits) <= q < (1 << quotient_bits)
    return q, r, overflow


def simulate(divider, pairs, rounding="half_even"):
    """Feed one ``(num, den)`` per cycle; return ``(quotient, remainder, overflow, rounded)``
    per pair, read :attr:`Divider.latency` cycles later."""
    m = Module()
    m.submodules.div = divider
    value = divider.quotient + round_up(divider.quotient, divider.remainder, divider.divisor,
                                        rounding)
    rounded = Signal(value.shape())
    m.d.comb += rounded.eq(value)
    out = []

    async def bench(ctx):
        for n in range(len(pairs) + divider.latency):
            if n < len(pairs):
                ctx.set(divider.num, pairs[n][0])
                ctx.set(divider.den, pairs[n][1])
            await ctx.tick()
            if n + 1 >= divider.latency and len(out) < len(pairs):
                out.append((ctx.get(divider.quotient), ctx.get(divider.remainder),
                            ctx.get(divider.overflow), ctx.get(rounded)))

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return out


def _check(divider, pairs, rounding):
    qb = divider.quotient_bits
    for (num, den), (q, r, ovf, rq) in zip(pairs, simulate(divider, pairs, rounding)):
        eq, er, eovf = _expected(num, den, qb)
        assert ovf == eovf, f"{num} / {den}: overflow {ovf}, expected {eovf}"
        if divider.signed:
            assert (q < 0) == (num < 0), f"{num} / {den}: quotient sign of {q}"
        if not eovf:
            assert (q, r) == (eq, er), f"{num} / {den}: got {q} r {r}, expected {eq} r {er}"
            assert rq == round_div(num, den, rounding), f"{num} / {den} {rounding}: got {rq}"


@pytest.mark.parametrize("signed, quotient_bits, stages_per_register, rounding", [
    (False, None, 1, "half_up"), (False, 3, 2, "trunc"), (True, None, 1, "half_even"),
    (True, 2, 3, "half_away"), (True, 4, 1, "half_up"), (False, 5, 4, "half_even"),
])
def test_exhaustive_small(signed, quotient_bits, stages_per_register, rounding):
    num_width, den_width = 6, 4
    divider = Divider(num_width=num_width, den_width=den_width, quotient_bits=quotient_bits,
                      signed=signed, stages_per_register=stages_per_register)
    lo, hi = (-(1 << num_width - 1), 1 << num_width - 1) if signed else (0, 1 << num_width)
    pairs = list(itertools.product(range(lo, hi), range(1, 1 << den_width)))
    _check(divider, pairs, rounding)


@settings(max_examples=15, deadline=None)
@given(st.data(), st.integers(8, 70), st.integers(1, 40), st.booleans(),
       st.sampled_from(ROUNDING_MODES), st.integers(1, 5))
def test_wide_random(data, num_width, den_width, signed, rounding, spacing):
    magnitude = num_width - int(signed)
    quotient_bits = data.draw(st.integers(1, magnitude))
    divider = Divider(num_width=num_width, den_width=den_width, quotient_bits=quotient_bits,
                      signed=signed, stages_per_register=spacing)
    lo = -(1 << num_width - 1) if signed else 0
    hi = (1 << num_width - 1 if signed else 1 << num_width) - 1
    nums = st.one_of(st.integers(lo, hi), st.sampled_from([lo, hi, 0, -1 if signed else 1]))
    dens = st.one_of(st.integers(1, (1 << den_width) - 1), st.sampled_from(
        [1, (1 << den_width) - 1]))
    pairs = data.draw(st.lists(st.tuples(nums, dens), min_size=20, max_size=40))
    # Quotients just inside and outside quotient_bits.
    den = data.draw(dens)
    for q in (-(1 << quotient_bits) - 1, -(1 << quotient_bits), (1 << quotient_bits) - 1,
              1 << quotient_bits):
        for num in (q * den, q * den + den - 1):
            if lo <= num <= hi:
                pairs.append((num, den))
    _check(divider, pairs, rounding)


def test_latency_and_checks():
    assert Divider(num_width=10, den_width=4, stages_per_register=1).latency == 11
    assert Divider(num_width=10, den_width=4, signed=True, stages_per_register=2).latency == 6
    with pytest.raises(ValueError, match="Divider.quotient_bits=10"):
        Divider(num_width=10, den_width=4, quotient_bits=10, signed=True)
    with pytest.raises(ValueError, match="Divider.den_width=0"):
        Divider(num_width=10, den_width=0)
    with pytest.raises(ValueError, match="round_up.rounding='up'"):
        round_up(Signal(4), Signal(4), Signal(4), "up")
