# amaranth: UnusedElaboratable=no
"""ExpUnit in amaranth.sim against golden.gbu_model.exp_unit and the lane's alpha formula: every
output of a random power/opacity sequence, with bubbles, over configs that change the table,
interpolation, formats and rounding; rounding_threshold against golden.gbu_model.round_div."""

import random

import pytest
import torch
from amaranth.sim import Simulator

from golden.gbu_model import exp_unit, round_div
from hw.gbu.config import GBUConfig
from hw.gbu.exp_unit import ExpUnit, rounding_threshold
from hw.lib.config import ROUNDING_MODES, SQ, UQ


CONFIGS = [
    GBUConfig(),
    GBUConfig(exp_interp=False, rounding="half_even"),
    GBUConfig(exp_addr_bits=5, alpha_format=UQ(1, 9), acc_format=SQ(6, 16),
              conic_format=SQ(3, 14), p0_format=SQ(6, 12), rounding="trunc"),
    GBUConfig(exp_addr_bits=4, acc_format=SQ(5, 29), alpha_format=UQ(1, 20), t_format=UQ(1, 20),
              rounding="half_away"),
]


def model(cfg, powers, opacities):
    """(alpha, take) per pair; alpha is compared only where take."""
    p = torch.tensor(powers, dtype=torch.int64)
    o = torch.tensor(opacities, dtype=torch.int64)
    e = exp_unit(cfg, p)
    alpha = round_div(o * e, 1 << cfg.alpha_format.f_bits, cfg.rounding).clamp(
        max=cfg.alpha_max_raw)
    take = (p <= 0) & (alpha >= cfg.alpha_min_raw)
    return alpha.tolist(), take.tolist()


def random_inputs(cfg, count, rng):
    acc, fa = cfg.acc_format, cfg.alpha_format
    one = 1 << acc.f_bits
    powers = []
    for _ in range(count):
        kind = rng.random()
        if kind < 0.6:
            powers.append(-rng.randrange(9 * one))            # the table's range and past it
        elif kind < 0.7:
            powers.append(rng.randrange(1, 3 * one))          # positive: skipped
        elif kind < 0.8:
            powers.append(rng.choice([0, -1, acc.min_int, acc.max_int, -8 * one, -8 * one + 1]))
        else:
            powers.append(rng.randint(acc.min_int, acc.max_int))
    opacities = [rng.choice([rng.randrange(fa.max_int + 1), fa.max_int, cfg.alpha_min_raw,
                             cfg.alpha_min_raw - 1, 1 << fa.f_bits])
                 for _ in range(count)]
    return powers, opacities


@pytest.mark.parametrize("cfg", CONFIGS, ids=range(len(CONFIGS)))
def test_exp_unit_matches_model(cfg):
    rng = random.Random(5)
    powers, opacities = random_inputs(cfg, 600, rng)
    want_alpha, want_take = model(cfg, powers, opacities)
    dut = ExpUnit(config=cfg)
    got = []

    async def bench(ctx):
        # A new value every cycle (the unit has no stall); the first `latency` outputs belong to
        # the reset state.
        for n in range(len(powers) + dut.latency):
            if n < len(powers):
                ctx.set(dut.power, powers[n])
                ctx.set(dut.o, opacities[n])
            await ctx.tick()
            if n + 1 >= dut.latency:
                got.append((ctx.get(dut.alpha), ctx.get(dut.take)))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    for n, ((alpha, take), wa, wt) in enumerate(zip(got, want_alpha, want_take)):
        assert take == wt, f"pair {n}: power {powers[n]}, o {opacities[n]}: take {take}"
        if wt:
            assert alpha == wa, f"pair {n}: power {powers[n]}, o {opacities[n]}: alpha {alpha}"


@pytest.mark.parametrize("rounding", ROUNDING_MODES)
@pytest.mark.parametrize("shift", [-2, 0, 1, 2, 5])
def test_rounding_threshold_is_the_least_value_rounding_to_the_bound(rounding, shift):
    def rounded(x):
        return x << -shift if shift <= 0 else round_div(x, 1 << shift, rounding)
    for bound in range(-1, 24):
        least = next(x for x in range(((max(bound, 0) + 1) << max(shift, 0)) + 1)
                     if rounded(x) >= bound)
        assert rounding_threshold(bound, shift, rounding) == least, bound
