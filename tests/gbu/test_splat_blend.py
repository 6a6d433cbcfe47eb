"""golden.splat_raster: hand-computed blending cases (DESIGN.md 7.2)."""

import math

import pytest
import torch

from golden.splat_raster import ALPHA_MIN, T_MIN, power_of, rasterize
from golden.splat_raster_loop import rasterize_loop
from tests.gbu import make_splats


RASTERIZERS = [rasterize, rasterize_loop]
ISO = [1.0, 0.0, 1.0]


@pytest.mark.parametrize("raster", RASTERIZERS)
@pytest.mark.parametrize("opacity, alpha", [(0.5, 0.5), (0.99, 0.99), (1.0, 0.99)])
def test_centred_gaussian_has_alpha_min_099_o(raster, opacity, alpha):
    s = make_splats([[5.0, 7.0]], ISO, [opacity], [[0.2, 0.4, 1.0]])
    out = raster(s, background=[0.1, 0.1, 0.1])
    assert out.final_T[7, 5].item() == 1 - alpha
    expected = [c * alpha + 0.1 * (1 - alpha) for c in (0.2, 0.4, 1.0)]
    assert out.image[7, 5].tolist() == pytest.approx(expected, abs=1e-15)
    # A neighbour one pixel to the right: power = -0.5 a dx^2.
    assert out.final_T[7, 6].item() == pytest.approx(1 - min(0.99, opacity * math.exp(-0.5)))
    assert out.n_blended[7, 5].item() == 1 and out.n_contrib[7, 5].item() == 1


@pytest.mark.parametrize("raster", RASTERIZERS)
def test_alpha_threshold_is_inclusive_at_1_over_255(raster):
    below = math.nextafter(ALPHA_MIN, 0)
    s = make_splats([[3.0, 3.0], [3.0, 3.0]], ISO * 2, [below, ALPHA_MIN], [[1, 0, 0], [0, 1, 0]])
    out = raster(s)
    # The first is skipped, the second (alpha == 1/255 exactly) blended at position 2.
    assert out.n_blended[3, 3].item() == 1 and out.n_contrib[3, 3].item() == 2
    assert out.image[3, 3].tolist() == [0.0, ALPHA_MIN, 0.0]
    assert out.stats.skipped_alpha >= 1


@pytest.mark.parametrize("raster", RASTERIZERS)
def test_power_above_zero_is_skipped(raster):
    # An indefinite conic (b^2 > ac) has power > 0 along a diagonal: dx = dy = 1 gives
    # -0.5 (1 + 1) - (-2) = 1 > 0, which a conic from a covariance never does.
    s = make_splats([[4.0, 4.0]], [1.0, -2.0, 1.0], [0.5], [[1, 1, 1]])
    out = raster(s)
    assert out.n_blended[3, 3].item() == 0 and out.final_T[3, 3].item() == 1
    assert out.n_blended[4, 4].item() == 1
    assert out.stats.skipped_power > 0


@pytest.mark.parametrize("raster", RASTERIZERS)
def test_early_stop_does_not_blend_and_n_contrib_counts_list_positions(raster):
    # At pixel (2, 2): a far-off Gaussian first (skipped, position 1), then five 0.9 ones.
    means = [[15.0, 15.0]] + [[2.0, 2.0]] * 5
    colors = [[0, 0, 0]] + [[1.0, 0.5, 0.25]] * 5
    s = make_splats(means, [10.0, 0.0, 10.0] * 6, [0.9] * 6, colors)
    out = raster(s)
    T, C, blended = 1.0, 0.0, 0
    for _ in range(5):
        test_T = T * (1 - 0.9)
        if test_T < T_MIN:
            break
        C, T, blended = C + 0.9 * T, test_T, blended + 1
    assert blended == 3  # 0.1**4 falls below 1e-4 in fp64: the fourth is not blended
    assert out.n_blended[2, 2].item() == 3 and out.n_contrib[2, 2].item() == 4
    assert out.final_T[2, 2].item() == T
    assert out.image[2, 2, 0].item() == pytest.approx(C, abs=1e-15)
    assert out.stats.terminated_pixels == 1


def test_power_matches_irss_completed_square():
    gen = torch.Generator().manual_seed(5)
    n = 1000
    mx, my, px, py = (torch.rand(n, generator=gen, dtype=torch.float64) * 32 for _ in range(4))
    lam = torch.rand(n, 2, generator=gen, dtype=torch.float64) + 0.05
    theta = torch.rand(n, generator=gen, dtype=torch.float64) * math.pi
    c, s = torch.cos(theta), torch.sin(theta)
    a = c * c / lam[:, 0] + s * s / lam[:, 1]
    b = c * s * (1 / lam[:, 0] - 1 / lam[:, 1])
    cc = s * s / lam[:, 0] + c * c / lam[:, 1]
    dx, dy = mx - px, my - py  # DESIGN 7.2: d = mean - pixel
    direct = power_of((a, b, cc), dx, dy)
    x0 = mx + b / a * dy
    p0 = -0.5 * (cc - b * b / a) * dy * dy
    irss = -0.5 * a * (px - x0) ** 2 + p0
    torch.testing.assert_close(irss, direct, rtol=1e-9, atol=1e-9)
    assert (direct <= 0).all()
