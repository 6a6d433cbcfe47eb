"""Test scenes for the splatting golden model: seeded synthetic ones and the garden scene.

Synthetic scenes place Gaussians by pixel position and depth, so each family of edge cases lands
where it is meant to: off-screen and behind-the-camera Gaussians, needle and flat (near-singular)
covariances, opacities at the 1/255 and 0.99 thresholds centred on a pixel, dense stacks that end
pixels early (including an exact 0.9 stack, whose T reaches 1e-4 after four Gaussians), and exact
duplicates whose depth tie only the index order resolves. On request (no Gaussians by default), a
stack of dots a few pixels wide, whose fourth stops its centre pixel and whose fifth is faint
enough to blend into it were it not stopped: a row shader meets the same pixel every few cycles,
through its first blend and its stop.

The garden scene is the real point cloud of ``test_garden.npz`` (Mip-NeRF 360 "garden" via
gsplat, Apache-2.0) with chosen, not trained, Gaussian parameters: isotropic scale = mean distance
to the 3 nearest points (exact, :mod:`golden.knn`; inria initializes with the RMS distance of the
3 nearest instead), clamped to ``sqrt(1e-7)`` as inria clamps; identity rotation; opacity uniform
in [0.1, 0.9] from a seeded generator; color from the point colors as SH degree 0.
"""

from pathlib import Path

import numpy as np
import torch

from golden.gaussians import Camera, GaussianScene
from golden.knn import mean_knn_distance
from golden.splat_preprocess import SH_C0


__all__ = ["GARDEN_NPZ", "GARDEN_ATTRIBUTION", "THRESHOLD_OPACITIES", "EDGE_CASES",
           "synthetic_scene", "garden_scene"]


#: ``../shared/data/test_garden.npz`` relative to the project root.
GARDEN_NPZ = Path(__file__).resolve().parents[1].parent / "shared/data/test_garden.npz"
GARDEN_ATTRIBUTION = (
    "Points, colors and cameras: Mip-NeRF 360 'garden' scene, from nerfstudio-project/gsplat "
    "assets/test_garden.npz (Apache-2.0). Scales, rotations and opacities are synthetic "
    "(accelforge golden.splat_scenes.garden_scene), not trained.")

#: Opacities of the threshold family: at and one fp64 ulp around 1/255, around the 0.99 clamp.
THRESHOLD_OPACITIES = (1 / 255, np.nextafter(1 / 255, 0), np.nextafter(1 / 255, 1), 0.99,
                       0.995, 1.0, 0.5)

#: Edge-case families of :func:`synthetic_scene` and their default counts.
EDGE_CASES = {"random": 48, "offscreen": 8, "behind": 4, "needle": 6, "threshold": 7,
              "stack": 12, "stack09": 6, "duplicate": 4, "dots": 0}


def _family(rng, kind, count, width, height):
    """Pixel position (count, 2), depth, scale (count, 3) in pixels at depth 1, opacity."""
    u = rng.uniform(-0.1, 1.1, count) * width
    v = rng.uniform(-0.1, 1.1, count) * height
    depth = rng.uniform(1.0, 8.0, count)
    sigma = np.exp(rng.uniform(np.log(0.3), np.log(6.0), (count, 3)))
    opacity = rng.uniform(0.05, 1.0, count)
    if kind == "offscreen":
        side = rng.integers(0, 2, count).astype(bool)
        u = np.where(side, np.where(u < width / 2, -12.0, width + 12.0), u)
        v = np.where(side, v, np.where(v < height / 2, -12.0, height + 12.0))
        sigma = np.full((count, 3), 8.0)
    elif kind == "behind":
        depth = rng.uniform(-2.0, 0.2, count)
    elif kind == "needle":
        # One or two axes 1e-6 of a pixel: rank-deficient 3D covariance before the dilation.
        sigma[:, 1:] = 1e-6
        sigma[: count // 2, 0] = rng.uniform(3.0, 10.0, count // 2)
    elif kind == "threshold":
        u = rng.integers(0, width, count).astype(float)
        v = rng.integers(0, height, count).astype(float)
        opacity = np.resize(THRESHOLD_OPACITIES, count)
        sigma = np.full((count, 3), 0.4)
    elif kind == "dots":
        u = np.full(count, float(rng.integers(2, width - 2)))
        v = np.full(count, float(rng.integers(2, height - 2)))
        sigma = np.full((count, 3), 0.3)
        depth = 2.0 + np.arange(count) * 0.25
        opacity = np.resize([0.9, 0.9, 0.9, 0.99, 0.05], count)
    elif kind in ("stack", "stack09", "duplicate"):
        centre = rng.uniform(0.3, 0.7, 2) * (width, height)
        u = np.full(count, centre[0]) + (kind == "stack") * rng.normal(0, 1.5, count)
        v = np.full(count, centre[1]) + (kind == "stack") * rng.normal(0, 1.5, count)
        sigma = np.full((count, 3), 3.0)
        if kind == "stack":
            opacity = rng.uniform(0.5, 1.0, count)
        elif kind == "stack09":
            depth, opacity = 2.0 + np.arange(count) * 0.25, np.full(count, 0.9)
        else:
            depth, opacity = np.full(count, 3.0), np.full(count, 0.8)
    return np.stack([u, v], 1), depth, sigma, opacity


def synthetic_scene(seed, width=48, height=40, counts=None):
    """A seeded scene of edge cases and the camera it is built for.

    Parameters
    ----------
    seed : int
    width, height : int
        Image size; the camera has ``fx = fy = 0.9 width`` and a centred principal point, and is
        rotated and moved by a seeded rigid transform.
    counts : dict or None
        Gaussians per family (keys of :data:`EDGE_CASES`); missing families get none,
        ``None`` means :data:`EDGE_CASES`.

    Returns
    -------
    scene : GaussianScene
        fp64. Gaussians of a family are contiguous, in the order of :data:`EDGE_CASES`;
        duplicates are exact copies except for the color.
    camera : Camera
    """
    rng = np.random.default_rng(seed)
    counts = dict(EDGE_CASES) if counts is None else counts
    unknown = set(counts) - set(EDGE_CASES)
    if unknown:
        raise ValueError(f"synthetic_scene: unknown families {sorted(unknown)}, "
                         f"expected some of {list(EDGE_CASES)}")
    f = 0.9 * width
    families = [_family(rng, kind, counts[kind], width, height)
                for kind in EDGE_CASES if counts.get(kind, 0)]
    pix, depth, sigma, opacity = (np.concatenate(p) for p in zip(*families))
    n = len(depth)
    # Invert px = f x / z + cx - 0.5; scale sigma pixels at depth 1 to world units at depth z.
    cx, cy = width / 2, height / 2
    p_cam = np.stack([(pix[:, 0] - cx + 0.5) * depth / f, (pix[:, 1] - cy + 0.5) * depth / f,
                      depth], 1)
    scales = sigma * np.abs(depth)[:, None] / f
    quats = rng.normal(size=(n, 4))
    kinds = [kind for kind in EDGE_CASES for _ in range(counts.get(kind, 0))]
    duplicate = np.array([kind == "duplicate" for kind in kinds], dtype=bool)
    quats[duplicate] = quats[duplicate][:1]
    scales[duplicate] = scales[duplicate][:1]
    # The world frame is a random rigid motion of the camera frame; Gaussians keep their pixels.
    rot, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    rot *= np.linalg.det(rot)
    trans = rng.normal(0, 1, 3)
    viewmat = np.eye(4)
    viewmat[:3, :3], viewmat[:3, 3] = rot, trans
    means = (p_cam - trans) @ rot  # world = R^T (p_cam - t)
    sh_dc = rng.normal(0, 1.2, (n, 3))
    scene = GaussianScene(
        means=torch.from_numpy(means), quats=torch.from_numpy(quats),
        scales=torch.from_numpy(scales), opacities=torch.from_numpy(opacity.astype(float)),
        sh_dc=torch.from_numpy(sh_dc), sh_rest=torch.zeros(n, 0, dtype=torch.float64),
        attribution=f"synthetic: golden.splat_scenes.synthetic_scene(seed={seed})")
    camera = Camera(viewmat=torch.from_numpy(viewmat), fx=f, fy=f, cx=cx, cy=cy,
                    width=width, height=height)
    return scene, camera


def garden_scene(path=GARDEN_NPZ, seed=0):
    """The garden point cloud as Gaussians, with its three cameras.

    Parameters
    ----------
    path : path-like
        The ``test_garden.npz`` file.
    seed : int
        Seed of the opacities.

    Returns
    -------
    scene : GaussianScene
        fp32, attribution :data:`GARDEN_ATTRIBUTION`.
    cameras : list of Camera

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist (it is not part of a clone of this repository).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"garden scene: {path} not found (shared test data, not part "
                                f"of the repository)")
    data = np.load(path)
    means = torch.from_numpy(data["means3d"])
    n = len(means)
    scale = mean_knn_distance(means).clamp(min=1e-7 ** 0.5).to(torch.float32)
    rgb = torch.from_numpy(data["colors"]).to(torch.float32) / 255
    opacity = np.random.default_rng(seed).uniform(0.1, 0.9, n).astype(np.float32)
    scene = GaussianScene(
        means=means, quats=torch.tensor([[1.0, 0.0, 0.0, 0.0]]).expand(n, 4).contiguous(),
        scales=scale[:, None].expand(n, 3).contiguous(), opacities=torch.from_numpy(opacity),
        sh_dc=(rgb - 0.5) / SH_C0, sh_rest=torch.zeros(n, 0), attribution=GARDEN_ATTRIBUTION)
    width, height = int(data["width"]), int(data["height"])
    cameras = [Camera(viewmat=torch.from_numpy(view), fx=float(K[0, 0]), fy=float(K[1, 1]),
                      cx=float(K[0, 2]), cy=float(K[1, 2]), width=width, height=height)
               for view, K in zip(data["viewmats"], data["Ks"])]
    return scene, cameras
