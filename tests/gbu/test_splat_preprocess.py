"""golden.splat_preprocess: projection, covariance, conic, radius, tile rect (DESIGN.md 7.3)."""

import math

import pytest
import torch

from golden.gaussians import Camera, GaussianScene
from golden.splat_binning import tile_rect
from golden.splat_preprocess import LOW_PASS, preprocess, quat_to_rotmat, sh0_to_color


def _camera(width=64, height=48, fx=50.0, fy=40.0, cx=30.0, cy=20.0):
    return Camera(viewmat=torch.eye(4, dtype=torch.float64), fx=fx, fy=fy, cx=cx, cy=cy,
                  width=width, height=height)


def _scene(means, scales, quats=None, opacities=None, sh_dc=None):
    n = len(means)
    t = torch.tensor
    return GaussianScene(
        means=t(means, dtype=torch.float64), scales=t(scales, dtype=torch.float64),
        quats=t([[1.0, 0, 0, 0]] * n if quats is None else quats, dtype=torch.float64),
        opacities=t([0.5] * n if opacities is None else opacities, dtype=torch.float64),
        sh_dc=t([[0.0] * 3] * n if sh_dc is None else sh_dc, dtype=torch.float64),
        sh_rest=torch.zeros(n, 0, dtype=torch.float64))


def test_point_on_optical_axis_lands_at_principal_point_minus_half():
    s = preprocess(_scene([[0.0, 0.0, 5.0]], [[0.1] * 3]), _camera())
    assert s.means2d[0].tolist() == [30.0 - 0.5, 20.0 - 0.5]
    assert s.depths[0].item() == 5.0


def test_projection_off_axis():
    s = preprocess(_scene([[1.0, -0.5, 4.0]], [[0.1] * 3]), _camera())
    assert s.means2d[0].tolist() == pytest.approx([50 * 0.25 + 29.5, 40 * -0.125 + 19.5])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_isotropic_on_axis_gives_a_equal_c_and_b_zero_with_dilation(dtype):
    sigma, z, f = 0.2, 4.0, 50.0
    cam = _camera(fx=f, fy=f)
    s = preprocess(_scene([[0.0, 0.0, z]], [[sigma] * 3], quats=[[0.3, -1.0, 2.0, 0.5]]), cam,
                   dtype)
    a, b, c = s.conics[0].tolist()
    var = (f * sigma / z) ** 2 + LOW_PASS  # J Sigma J^T on axis is (f/z)^2 sigma^2 I, + 0.3
    assert a == pytest.approx(1 / var, rel=1e-6) and c == pytest.approx(a, rel=1e-6)
    assert abs(b) < 1e-6 * a
    # lambda_max = var + sqrt(0.1) (the floor of the discriminant), radius = ceil(3 sqrt(.)).
    assert s.radii[0].item() == math.ceil(3 * math.sqrt(var + math.sqrt(0.1)))


def test_degenerate_gaussian_is_regularized_by_dilation():
    # Zero scale: the 2D covariance is exactly 0.3 I.
    s = preprocess(_scene([[0.0, 0.0, 2.0]], [[0.0] * 3]), _camera())
    assert s.conics[0].tolist() == pytest.approx([1 / LOW_PASS, 0.0, 1 / LOW_PASS])
    assert s.radii[0].item() == math.ceil(3 * math.sqrt(0.3 + math.sqrt(0.1)))


def test_anisotropic_conic_is_inverse_of_screen_covariance():
    # Rotated 90 degrees about z: x and y scales swap; fx = fy so cov = (f/z)^2 diag(sy^2, sx^2).
    q = [math.cos(math.pi / 4), 0, 0, math.sin(math.pi / 4)]
    cam = _camera(fx=50.0, fy=50.0)
    s = preprocess(_scene([[0.0, 0.0, 5.0]], [[0.3, 0.1, 0.2]], quats=[q]), cam)
    k = (50.0 / 5.0) ** 2
    expected = [1 / (k * 0.01 + LOW_PASS), 0.0, 1 / (k * 0.09 + LOW_PASS)]
    assert s.conics[0].tolist() == pytest.approx(expected, abs=1e-12)


def test_jacobian_clamp_at_1_3_tan_fov():
    # Far off-axis: t.x/t.z = 3 is clamped to 1.3 W/(2 fx) = 1.3 * 0.64 in the Jacobian only.
    cam = _camera(fx=50.0, fy=50.0, cx=32.0, cy=24.0)
    z, sigma = 2.0, 0.05
    s = preprocess(_scene([[3 * z, 0.0, z]], [[sigma] * 3]), cam)
    lim = 1.3 * 64 / (2 * 50.0)
    # J row 0 = (f/z, 0, -f lim / z); cov_xx = sigma^2 (f/z)^2 (1 + lim^2).
    var_x = sigma ** 2 * (50.0 / z) ** 2 * (1 + lim ** 2) + LOW_PASS
    var_y = sigma ** 2 * (50.0 / z) ** 2 + LOW_PASS
    assert s.conics[0].tolist() == pytest.approx([1 / var_x, 0.0, 1 / var_y], abs=1e-12)
    assert s.means2d[0, 0].item() == 50.0 * 3 + 32.0 - 0.5  # the mean is not clamped


def test_near_plane_culls():
    s = preprocess(_scene([[0, 0, 0.2], [0, 0, 0.2000001], [0, 0, -3.0]], [[0.1] * 3] * 3),
                   _camera())
    assert s.radii.tolist()[0] == 0 and s.radii.tolist()[1] > 0 and s.radii.tolist()[2] == 0
    assert torch.isfinite(s.conics).all() and torch.isfinite(s.means2d).all()


def test_offscreen_gaussian_with_empty_rect_is_culled():
    s = preprocess(_scene([[-10.0, 0.0, 1.0], [-0.62, 0.0, 1.0]], [[0.01] * 3] * 2), _camera())
    assert s.radii.tolist()[0] == 0  # x = -470 px, radius 2: no tile
    assert s.radii.tolist()[1] > 0   # x = -1.5 px, radius 2: reaches tile 0


def test_quaternion_is_normalized_and_rotation_orthonormal():
    q = torch.tensor([[2.0, -1.0, 0.5, 3.0]], dtype=torch.float64)
    r = quat_to_rotmat(q)[0]
    torch.testing.assert_close(r @ r.T, torch.eye(3, dtype=torch.float64))
    assert torch.linalg.det(r).item() == pytest.approx(1.0)
    torch.testing.assert_close(quat_to_rotmat(q * 7), quat_to_rotmat(q))


def test_sh0_color_clamps_below_only():
    c = sh0_to_color(torch.tensor([[0.0, -5.0, 5.0]], dtype=torch.float64))
    assert c.tolist() == [[0.5, 0.0, 0.5 + 0.28209479177387814 * 5]]


@pytest.mark.parametrize("p, r, lo, hi", [
    ((20.0, 20.0), 3, (1, 1), (2, 2)),    # (17/16, 17/16) .. (38/16, 38/16) truncated
    ((15.9, 0.0), 1, (0, 0), (1, 1)),     # rect_max = (15.9 + 16) / 16 = 1.99 -> 1
    ((16.0, 0.0), 1, (0, 0), (2, 1)),     # (16 + 16) / 16 = 2
    ((-30.0, 5.0), 20, (0, 0), (0, 2)),   # negative quotients clamp to 0
    ((100.0, 70.0), 50, (3, 1), (4, 3)),  # clamped to the 4 x 3 grid of 64 x 48
])
def test_tile_rect_is_inria_get_rect(p, r, lo, hi):
    rmin, rmax = tile_rect(torch.tensor([p], dtype=torch.float64), torch.tensor([r]), 64, 48)
    assert tuple(rmin[0].tolist()) == lo and tuple(rmax[0].tolist()) == hi
