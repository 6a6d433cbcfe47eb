"""Per-Gaussian projection of 3DGS, inria ``preprocessCUDA`` (DESIGN.md 7.3), in fp64 or fp32.

For each Gaussian: cull ``z <= 0.2`` in camera space; 3D covariance ``R S S^T R^T`` from the
normalized quaternion (w, x, y, z) and the scales (``computeCov3D``); screen covariance
``J W Sigma W^T J^T + 0.3 I`` with the Jacobian taken at the position whose ``x/z``, ``y/z`` are
clamped to ``1.3 tan(fov/2)`` (``computeCov2D``); conic = inverse of that covariance, culled when
its determinant is 0; radius ``ceil(3 sqrt(lambda_max))`` with ``lambda = mid +- sqrt(max(0.1,
mid^2 - det))``; culled when its tile rectangle is empty; color from SH degree 0.

Pixel position: inria maps NDC to pixels as ``((ndc + 1) W - 1) / 2``, which with intrinsics is
``px = fx x / z + cx - 0.5`` (pixel ``i`` has its centre at integer ``i``); that is the form used
here, from the camera's gsplat-style ``(fx, fy, cx, cy)``. inria derives the projection from a
4x4 matrix with a ``1e-7`` guard on ``w``; the intrinsics form drops that guard.
"""

import dataclasses

import torch

from golden.splat_binning import tile_rect


__all__ = ["SH_C0", "NEAR_PLANE", "LOW_PASS", "Splats2D", "quat_to_rotmat", "sh0_to_color",
           "preprocess"]


#: Degree-0 real spherical-harmonic constant, ``1 / (2 sqrt(pi))`` as inria writes it.
SH_C0 = 0.28209479177387814
#: Gaussians with camera-space ``z <= NEAR_PLANE`` are culled.
NEAR_PLANE = 0.2
#: Variance added to the screen covariance diagonal (EWA low-pass filter), pixels^2.
LOW_PASS = 0.3


@dataclasses.dataclass(frozen=True)
class Splats2D:
    """Projected Gaussians: what the blending stage consumes.

    Attributes
    ----------
    means2d : torch.Tensor, (N, 2)
        Pixel positions (x, y); pixel ``(i, j)`` is at integer coordinates.
    conics : torch.Tensor, (N, 3)
        ``(a, b, c)``: inverse screen covariance ``[[a, b], [b, c]]``.
    opacities : torch.Tensor, (N,)
    colors : torch.Tensor, (N, 3)
    depths : torch.Tensor, (N,)
        Camera-space z, the sort key.
    radii : torch.Tensor, (N,)
        ``int64`` radius in pixels; 0 for a culled Gaussian, which no tile lists.
    width, height : int
        Image size.
    """
    means2d: torch.Tensor
    conics: torch.Tensor
    opacities: torch.Tensor
    colors: torch.Tensor
    depths: torch.Tensor
    radii: torch.Tensor
    width: int
    height: int


def quat_to_rotmat(quats):
    """Rotation matrices (N, 3, 3) of quaternions (w, x, y, z), normalized first."""
    w, x, y, z = torch.nn.functional.normalize(quats, dim=-1).unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], -1).reshape(-1, 3, 3)


def sh0_to_color(sh_dc):
    """RGB of SH degree 0: ``max(0.5 + SH_C0 f_dc, 0)``; inria clamps below only."""
    return (SH_C0 * sh_dc + 0.5).clamp(min=0)


def _screen_covariance(p_view, cov3d, rot_wc, camera):
    """``J W Sigma W^T J^T + LOW_PASS I`` (N, 2, 2), with inria's clamp of the Jacobian point."""
    tan_x, tan_y = camera.tan_fov
    z = p_view[:, 2]
    tx = (p_view[:, 0] / z).clamp(-1.3 * tan_x, 1.3 * tan_x) * z
    ty = (p_view[:, 1] / z).clamp(-1.3 * tan_y, 1.3 * tan_y) * z
    zero = torch.zeros_like(z)
    jac = torch.stack([camera.fx / z, zero, -camera.fx * tx / (z * z),
                       zero, camera.fy / z, -camera.fy * ty / (z * z)], -1).reshape(-1, 2, 3)
    t = jac @ rot_wc
    return t @ cov3d @ t.transpose(1, 2) + LOW_PASS * torch.eye(2, dtype=z.dtype)


def preprocess(scene, camera, dtype=torch.float64):
    """Project every Gaussian of ``scene`` through ``camera``.

    Parameters
    ----------
    scene : golden.gaussians.GaussianScene
    camera : golden.gaussians.Camera
    dtype : torch.dtype
        ``torch.float64`` (reference) or ``torch.float32`` (inria's precision).

    Returns
    -------
    Splats2D
        One entry per Gaussian, culled ones with radius 0 (their other fields are unspecified
        but finite).
    """
    scene = scene.to(dtype)
    viewmat = camera.viewmat.to(dtype)
    rot_wc = viewmat[:3, :3]
    p_view = scene.means @ rot_wc.T + viewmat[:3, 3]
    in_front = p_view[:, 2] > NEAR_PLANE
    # Culled Gaussians get a harmless depth so nothing below divides by <= 0.
    p_view = torch.where(in_front[:, None], p_view, torch.tensor([0.0, 0.0, 1.0], dtype=dtype))

    m = quat_to_rotmat(scene.quats) * scene.scales[:, None, :]
    cov = _screen_covariance(p_view, m @ m.transpose(1, 2), rot_wc, camera)
    a, b, c = cov[:, 0, 0], cov[:, 0, 1], cov[:, 1, 1]
    det = a * c - b * b
    invertible = det != 0
    det_inv = 1 / torch.where(invertible, det, 1)
    conics = torch.stack([c * det_inv, -b * det_inv, a * det_inv], -1)
    mid = 0.5 * (a + c)
    spread = torch.sqrt((mid * mid - det).clamp(min=0.1))
    # mid + spread >= mid - spread since spread > 0: lambda_max is always the first root.
    radius = torch.ceil(3 * torch.sqrt(mid + spread))

    z = p_view[:, 2]
    means2d = torch.stack([camera.fx * p_view[:, 0] / z + camera.cx - 0.5,
                           camera.fy * p_view[:, 1] / z + camera.cy - 0.5], -1)
    rect_min, rect_max = tile_rect(means2d, radius, camera.width, camera.height)
    area = (rect_max - rect_min).prod(-1)
    visible = in_front & invertible & (area > 0)
    return Splats2D(means2d=means2d, conics=conics, opacities=scene.opacities,
                    colors=sh0_to_color(scene.sh_dc), depths=z,
                    radii=torch.where(visible, radius, 0).to(torch.int64),
                    width=camera.width, height=camera.height)
