"""Bit-exact GBU model (golden/gbu_model.py) against the fp64 reference and hand computations.

Accuracy targets (DESIGN.md 7.2): PSNR >= 50 dB against fp64 and equal skip / blend / stop
decisions on >= 99.9% of (pixel, Gaussian) pairs; IRSS evaluates far fewer pixels than naive.
"""

import math

import pytest
import torch

from golden.gbu_decisions import decision_agreement, reference_decisions
from golden.gbu_model import (BLENDED, SKIPPED, TERMINATED, _irss_power, exp_unit,
                              in_row_range, quantize_splats, render_gbu, round_div, row_setup)
from golden.splat_binning import bin_splats
from golden.splat_preprocess import preprocess
from golden.splat_raster import rasterize
from golden.splat_scenes import synthetic_scene
from hw.gbu.config import GBUConfig
from sw.frame import psnr

from . import make_splats


def _scene(seed, width, height):
    scene, camera = synthetic_scene(seed, width, height)
    splats = preprocess(scene, camera)
    return splats, bin_splats(splats)


SCENES = [(0, 48, 40), (1, 48, 40), (2, 64, 48), (3, 33, 29)]


@pytest.mark.parametrize("seed, width, height", SCENES)
def test_accuracy_vs_fp64(seed, width, height):
    splats, tiles = _scene(seed, width, height)
    bg = (0.25, 0.5, 1.0)
    ref = rasterize(splats, tiles, background=bg)
    cfg = GBUConfig(bg_r=round(0.25 * 2 ** 14), bg_g=round(0.5 * 2 ** 14), bg_b=1 << 14)
    res = render_gbu(cfg, splats, tiles, record_decisions=True)
    p = psnr(res.image, ref.image)
    for r in res.tiles:
        # The model's decisions agree with its own counts.
        assert torch.equal((r.decisions == BLENDED).sum(0), r.n_blended)
    agree, total = decision_agreement(res, splats, tiles)
    rate = agree / total
    print(f"\nscene {seed} {width}x{height}: PSNR {p:.1f} dB, decisions agree on "
          f"{100 * rate:.4f}% of {total} pairs, max|dT| "
          f"{float((res.final_T - ref.final_T).abs().max()):.2e}")
    assert p >= 50
    assert rate >= 0.999
    # Reference decisions reproduce the reference counts.
    assert total == ref.stats.pairs


def test_decision_agreement_needs_recorded_decisions():
    splats, tiles = _scene(0, 32, 32)
    with pytest.raises(ValueError, match="record_decisions=True"):
        decision_agreement(render_gbu(GBUConfig(), splats, tiles), splats, tiles)


@pytest.mark.parametrize("seed, width, height", SCENES[:2])
def test_irss_vs_naive(seed, width, height):
    splats, tiles = _scene(seed, width, height)
    irss = render_gbu(GBUConfig(), splats, tiles)
    naive = render_gbu(GBUConfig(dataflow="naive"), splats, tiles)
    ratio = irss.evaluations / naive.evaluations
    bound = sum(GBUConfig().naive_tile_cycles(int(n))
                for n in tiles.offsets[1:] - tiles.offsets[:-1])
    print(f"\nscene {seed}: irss {irss.evaluations} evaluations, naive {naive.evaluations} "
          f"({ratio:.3f}); cycles (4 lanes) irss {irss.cycles}, naive {naive.cycles}, naive "
          f"without termination {bound}; irss vs naive PSNR {psnr(irss.image, naive.image):.1f}")
    assert ratio < 0.4
    assert irss.cycles < naive.cycles <= bound
    assert psnr(irss.image, naive.image) > 60
    for r in irss.tiles:
        lanes = GBUConfig().irss_tile_cycles(r.row_evals.tolist())
        assert r.cycles == max(lanes, int(r.row_setups.sum()))    # one row setup for 4 lanes
        assert torch.equal(r.row_skipped, 16 * r.row_setups - r.row_evals)
        assert bool((r.row_setups <= r.row_pairs).all())
    for r in naive.tiles:
        assert torch.equal(r.row_setups, r.row_pairs)                # naive sets up every row


def _one_tile(splats):
    return bin_splats(splats)


def test_centered_gaussian_by_hand():
    # One Gaussian on pixel (5, 7): power 0 there, e = 1 exactly, alpha = o.
    cfg = GBUConfig()
    splats = make_splats([[5.0, 7.0]], [[0.5, 0.0, 0.5]], [0.8], [[1.0, 0.5, 0.25]])
    tiles = _one_tile(splats)
    res = render_gbu(cfg, splats, tiles, record_decisions=True)
    o = round(0.8 * 2 ** 16)                                  # 52429
    T = round_div((1 << 24) * ((1 << 16) - o), 1 << 16, "half_up")
    w = round_div(o * (1 << 24), 1 << 16, "half_up")
    expect = [round_div(round(v * 2 ** 14) * w, 1 << 18, "half_up") for v in (1.0, 0.5, 0.25)]
    assert int(res.T_raw[7, 5]) == T
    assert res.image_raw[7, 5].tolist() == expect
    assert int(res.n_blended[7, 5]) == 1 and int(res.n_contrib[7, 5]) == 1
    # Row setup of row 7 (dy = 0): x0 = 5, p0 = 0; interval half-width from
    # 0.25 (x - 5)^2 <= L, L >= ln(255) + 1/8 (o < 1 bound).
    g = quantize_splats(cfg, splats, tiles.ids, (0, 0))
    s = row_setup(cfg, g)
    assert int(s["x0"][0, 7]) == 5 << 12 and int(s["p0"][0, 7]) == 0
    L = cfg.log_table[o.bit_length()] / 2 ** 24
    half = math.sqrt(L / 0.25)
    assert int(s["lo"][0, 7]) == max(0, math.ceil(5 - half))
    assert int(s["hi"][0, 7]) == math.floor(5 + half)
    # Every row: the two-additions-per-pixel recurrence equals the model's closed form, and the
    # power is within a few accumulator LSBs of the exact direct formula.
    s["a_acc"] = g["a"] << 2
    power, evaluated = _irss_power(cfg, s)
    for r in range(16):
        lo, hi = int(s["lo"][0, r]), int(s["hi"][0, r])
        P, D = int(s["P"][0, r]), int(s["D"][0, r])
        for x in range(lo, hi + 1):
            assert int(power[0, r, x]) == P
            exact = -0.5 * 0.5 * ((x - 5) ** 2 + (r - 7) ** 2)
            assert abs(P / 2 ** 30 - exact) < 1e-7
            P, D = P + D, D - int(s["a_acc"][0])
    # Pixels outside the interval are skipped, not evaluated; the rest follow the exp table.
    row_work = res.tiles[0].row_evals
    assert int(row_work.sum()) == int(evaluated.sum()) < 256
    assert int(exp_unit(cfg, torch.tensor([0]))) == 1 << 16
    ref = rasterize(splats, tiles)
    assert psnr(res.image, ref.image) > 70


def test_empty_rows():
    # Gaussian at (8, 2), conic 0.5 I, o = 0.5: row r contributes iff 0.25 (r - 2)^2 <= ln(127.5)
    # (about 4.85, i.e. |dy| <= 4.4); the conservative interval adds at most ln 2 + 1/8 + rounding.
    cfg = GBUConfig()
    splats = make_splats([[8.0, 2.0]], [[0.5, 0.0, 0.5]], [0.5], [[1.0, 1.0, 1.0]])
    tiles = _one_tile(splats)
    res = render_gbu(cfg, splats, tiles, record_decisions=True)
    t = res.tiles[0]
    g = quantize_splats(cfg, splats, tiles.ids, (0, 0))
    empty = row_setup(cfg, g)["empty"][0]
    assert not bool(empty[:7].any())                          # |dy| <= 4: contributing
    assert bool(empty[9:].all())                              # |dy| >= 7: 0.25 * 49 > 6.4
    # Only the rows of the Gaussian's range are set up: rows 0 .. 6 (|dy| <= 4.76 from
    # 0.25 dy^2 <= L = 5.67, the bound for o < 1), exactly the non-empty ones here.
    inside = in_row_range(cfg, g)[0]
    assert inside.nonzero().flatten().tolist() == list(range(7))
    assert torch.equal(t.row_pairs, torch.ones(16, dtype=torch.int64))
    assert torch.equal(t.row_setups, inside.long())
    assert torch.equal(t.row_empty, (empty & inside).long())
    assert int(t.row_evals[9:].sum()) == 0 and int(t.row_skipped[9]) == 0
    dec = t.decisions[0].reshape(16, 16)
    assert bool((dec[9:] == SKIPPED).all())
    assert bool((res.T_raw[9:] == 1 << 24).all())
    # Same decisions as fp64 on every pixel.
    ref_dec, _ = reference_decisions(splats, tiles)[0]
    assert torch.equal(t.decisions.long(), ref_dec)


def test_early_termination_stack():
    # Six identical Gaussians o = 0.95 on pixel (4, 4): T = 0.05, 0.0025, 1.25e-4, then
    # 6.25e-6 < 1e-4: the fourth stops the pixel unblended.
    cfg = GBUConfig()
    n = 6
    splats = make_splats([[4.0, 4.0]] * n, [[1.0, 0.0, 1.0]] * n, [0.95] * n,
                         [[1.0, 0.0, 0.0]] * n)
    tiles = _one_tile(splats)
    res = render_gbu(cfg, splats, tiles, record_decisions=True)
    o = round(0.95 * 2 ** 16)
    T = 1 << 24
    for _ in range(3):
        T = round_div(T * ((1 << 16) - o), 1 << 16, "half_up")
    assert int(res.T_raw[4, 4]) == T
    assert round_div(T * ((1 << 16) - o), 1 << 16, "half_up") < cfg.t_min_raw
    assert int(res.n_blended[4, 4]) == 3 and int(res.n_contrib[4, 4]) == 3
    t = res.tiles[0]
    assert t.decisions[:, 4 * 16 + 4].tolist() == [BLENDED] * 3 + [TERMINATED] * 3
    ref = rasterize(splats, tiles)
    assert int(ref.n_blended[4, 4]) == 3
    assert abs(float(res.final_T[4, 4]) - float(ref.final_T[4, 4])) < 1e-6


def test_row_termination_and_opacity_threshold():
    # A wide opaque stack stops whole rows: later Gaussians get no setup on those rows.
    cfg = GBUConfig(lanes=2)
    n = 8
    splats = make_splats([[7.5, 7.5]] * n, [[0.001, 0.0, 0.001]] * n, [0.99] * n,
                         [[0.5, 0.5, 0.5]] * n)
    res = render_gbu(cfg, splats, bin_splats(splats))
    t = res.tiles[0]
    assert int(t.row_setups.max()) < n                        # rows stopped before the end
    assert bool((res.n_blended <= 3).all())
    assert torch.equal(res.n_blended, rasterize(splats, bin_splats(splats)).n_blended)
    # o below 1/255 never contributes and has no lane work at all.
    low = make_splats([[7.0, 7.0]], [[0.5, 0.0, 0.5]], [0.003], [[1.0, 1.0, 1.0]])
    r = render_gbu(cfg, low, bin_splats(low))
    assert int(r.evaluations) == 0 and bool((r.T_raw == 1 << 24).all())


def test_narrow_config_degrades_but_runs():
    splats, tiles = _scene(0, 48, 40)
    ref = rasterize(splats, tiles)
    from hw.lib.config import SQ, UQ
    cfg = GBUConfig(alpha_format=UQ(1, 9), t_format=UQ(1, 16), exp_addr_bits=5,
                    exp_interp=False, conic_format=SQ(3, 14), acc_format=SQ(6, 16),
                    p0_format=SQ(6, 12), rounding="trunc")
    p = psnr(render_gbu(cfg, splats, tiles).image, ref.image)
    print(f"\nnarrow config PSNR {p:.1f} dB")
    assert 20 < p < psnr(render_gbu(GBUConfig(), splats, tiles).image, ref.image)
