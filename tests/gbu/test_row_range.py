# amaranth: UnusedElaboratable=no
"""The row range of a Gaussian (golden.gbu_model.row_range, carried in the splat record as
``rows_above``/``rows_below``): every row outside it is one that golden.gbu_model.row_setup
finds empty, for scene, random and edge-case Gaussians over several configs (each rounding mode,
narrow formats, ``2**e`` scaling either way); it leaves out most empty rows; and the core, which
sets up only the rows inside it, gives the same pixels as with the range left out (every row
set up) and as the model, in fewer cycles."""

import math
import random

import pytest
import torch

from golden.gbu_model import in_row_range, row_range, row_setup
from golden.splat_binning import bin_splats
from golden.splat_preprocess import preprocess
from golden.splat_scenes import synthetic_scene
from hw.gbu.config import GBUConfig
from hw.lib.config import SQ, UQ
from sim.gbu_vectors import tile_case

from .test_gbu_core import check, run_core
from .test_row_setup import (FIELDS, NARROW, edge_gaussians, random_gaussians,
                             scene_gaussians)


CONFIGS = {
    "default": GBUConfig(),
    "narrow": NARROW,
    "trunc": GBUConfig(rounding="trunc", alpha_format=UQ(1, 12)),
    "half_away": GBUConfig(rounding="half_away"),
    # f_p > f_c + 2 f_q: p0's quotient is scaled up (e > 0) instead of down.
    "scaled_up": GBUConfig(coord_format=SQ(8, 4), x0_format=SQ(8, 4), conic_format=SQ(3, 8),
                           p0_format=SQ(5, 20), acc_format=SQ(6, 24), rounding="half_even"),
}


def threshold_gaussians(cfg, rng, n):
    """Gaussians whose edge falls on a row: ``p0 + L`` near zero at some row of the tile, for
    opacities around every bit-length step and the 1/255 threshold, any correlation (``b``)."""
    q, c, al = cfg.coord_format, cfg.conic_format, cfg.alpha_format
    m = cfg.alpha_min_raw
    opacities = [m - 1, m, m + 1] + [(1 << k) + d for k in range(m.bit_length(), al.width)
                                     for d in (-1, 0)] + [al.max_int]
    out = []
    for _ in range(n):
        a = rng.uniform(0.002, 3.0)
        c_ = rng.uniform(0.002, 3.0)
        b = rng.uniform(-1.0, 1.0) * (a * c_) ** 0.5
        raw = {k: max(c.min_int, min(c.max_int, round(v * (1 << c.f_bits))))
               for k, v in zip("abc", (a, b, c_))}
        o = max(1, min(al.max_int, rng.choice(opacities)))
        # Put the edge (p0 + L = 0) on a row, give or take a few coordinate steps.
        k = a * c_ - b * b
        L = cfg.log_table[o.bit_length()] or 0
        reach = math.sqrt(2 * L / (1 << cfg.p0_format.f_bits) * a / k) if k > 0 else 0.0
        row = rng.randrange(16) + rng.choice((-1, 1)) * reach + \
            rng.randint(-4, 4) / (1 << q.f_bits)
        out.append({"mx": round(rng.uniform(-4, 20) * (1 << q.f_bits)),
                    "my": max(q.min_int, min(q.max_int, round(row * (1 << q.f_bits)))),
                    **raw, "o": o})
    return out


def gaussians(cfg, seed):
    """Quantized scene Gaussians, random raw values, edge and threshold cases, as int64
    tensors (the range fields excluded)."""
    rng = random.Random(seed)
    scene = scene_gaussians(cfg, seed, 3)
    rows = [{k: int(scene[k][n]) for k in FIELDS} for n in range(len(scene["a"]))]
    rows += random_gaussians(cfg, 600, rng) + edge_gaussians(cfg) + \
        threshold_gaussians(cfg, rng, 4000)
    return {k: torch.tensor([r[k] for r in rows], dtype=torch.int64) for k in FIELDS}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_range_holds_every_non_empty_row(name):
    cfg = CONFIGS[name]
    g = gaussians(cfg, seed=len(name))
    g["rows_above"], g["rows_below"] = row_range(cfg, g)
    inside = in_row_range(cfg, g)
    empty = row_setup(cfg, g)["empty"]
    missed = (~empty & ~inside).nonzero().tolist()
    assert not missed, f"{len(missed)} non-empty rows outside the range, first {missed[0]}"
    # Range fields fit their 4 bits; "no row" is exactly above + below >= tile.
    assert ((g["rows_above"] >= 0) & (g["rows_above"] < 16)).all()
    assert ((g["rows_below"] >= 0) & (g["rows_below"] < 16)).all()
    assert torch.equal(g["rows_above"] + g["rows_below"] >= 16, ~inside.any(1))
    # Useful, not only safe: most empty rows are left out.
    assert (empty & ~inside).sum() >= 0.5 * empty.sum()


def test_range_edge_cases():
    cfg = GBUConfig()
    one_c, one_q = 1 << cfg.conic_format.f_bits, 1 << cfg.coord_format.f_bits
    base = {"mx": 8 * one_q, "my": 8 * one_q, "a": one_c // 2, "b": 0, "c": one_c // 2,
            "o": cfg.alpha_format.max_int}
    cases = {
        "degenerate a": {**base, "a": 0},                       # no row
        "transparent": {**base, "o": cfg.alpha_min_raw // 2},   # no row
        "indefinite": {**base, "b": one_c},                     # every row
        "far below": {**base, "my": 40 * one_q},                # no row
        "compact": base,
    }
    g = {k: torch.tensor([c[k] for c in cases.values()]) for k in FIELDS}
    above, below = (v.tolist() for v in row_range(cfg, g))
    got = dict(zip(cases, zip(above, below)))
    for name in ("degenerate a", "transparent", "far below"):
        assert sum(got[name]) >= 16, name
    assert got["indefinite"] == (0, 0)
    # a = c = 1/2, b = 0: p0 = -dy^2 / 4 >= -L = -6.375 (the bound for o < 2) up to
    # |dy| = 5.05 around row 8: rows 3 .. 13, exactly the non-empty ones.
    assert got["compact"] == (3, 2)


def test_core_same_pixels_fewer_cycles():
    """The core with the range and with it left out (0, 0: every row set up), stall-free,
    one row setup for three lanes: equal pixels, equal to the model's, and the range saves
    cycles on a synthetic scene's busiest tile."""
    cfg = GBUConfig(lanes=3, row_setups=1)
    splats = preprocess(*synthetic_scene(4, 40, 24))
    tiles = bin_splats(splats)
    counts = (tiles.offsets[1:] - tiles.offsets[:-1]).tolist()
    case = tile_case(cfg, splats, tiles, max(range(len(counts)), key=counts.__getitem__))
    full = dict(case, splats=[dict(s, rows_above=0, rows_below=0) for s in case["splats"]])
    assert case["splats"] != full["splats"]
    got, cycles = run_core(cfg, [case], stall=0.0)
    got_full, cycles_full = run_core(cfg, [full], stall=0.0)
    check(got, [case])
    check(got_full, [case])
    assert case["cycles"] <= cycles < cycles_full
