# amaranth: UnusedElaboratable=no
"""SquareRoot in amaranth.sim against math.isqrt: exhaustively for small widths, with
hypothesis for wide ones, for several register spacings."""

import math

import pytest
from amaranth.sim import Simulator
from hypothesis import given, settings, strategies as st

from hw.lib.isqrt import SquareRoot


def simulate(unit, values):
    """Feed one radicand per cycle; return ``(root, remainder)`` per radicand."""
    out = []

    async def bench(ctx):
        for n in range(len(values) + unit.latency):
            if n < len(values):
                ctx.set(unit.x, values[n])
            await ctx.tick()
            if n + 1 >= unit.latency and len(out) < len(values):
                out.append((ctx.get(unit.root), ctx.get(unit.remainder)))

    sim = Simulator(unit)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return out


def _check(unit, values):
    for x, (root, rem) in zip(values, simulate(unit, values)):
        want = math.isqrt(x)
        assert (root, rem) == (want, x - want * want), f"isqrt({x}): got {root} r {rem}"


@pytest.mark.parametrize("width, spacing", [(1, 1), (7, 1), (10, 2), (11, 5)])
def test_exhaustive_small(width, spacing):
    _check(SquareRoot(width=width, stages_per_register=spacing), list(range(1 << width)))


@settings(max_examples=10, deadline=None)
@given(st.data(), st.integers(12, 80), st.integers(1, 4))
def test_wide_random(data, width, spacing):
    top = (1 << width) - 1
    values = data.draw(st.lists(st.integers(0, top), min_size=20, max_size=40))
    root = math.isqrt(top)
    values += [top, root * root, root * root - 1, (root - 1) ** 2 + 1]
    _check(SquareRoot(width=width, stages_per_register=spacing), values)


def test_latency_and_checks():
    unit = SquareRoot(width=9, stages_per_register=2)
    assert (unit.root_bits, unit.latency) == (5, 3)
    with pytest.raises(ValueError, match="SquareRoot.width=0"):
        SquareRoot(width=0)
    with pytest.raises(ValueError, match="SquareRoot.stages_per_register=0"):
        SquareRoot(width=8, stages_per_register=0)
