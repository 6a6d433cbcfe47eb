"""The garden scene (real points, chosen Gaussian parameters) rendered at 648 x 420.

Skipped when ``../shared/data/test_garden.npz`` (relative to the project root) is absent, as in
a user's clone. The scene is built and rendered once per module; timings are printed (``-s``).
"""

import time

import pytest
import torch

from golden.knn import mean_knn_distance
from golden.splat_raster import render
from golden.splat_scenes import GARDEN_ATTRIBUTION, GARDEN_NPZ, garden_scene


pytestmark = pytest.mark.skipif(not GARDEN_NPZ.is_file(),
                                reason=f"shared test data {GARDEN_NPZ} not present")


@pytest.fixture(scope="module")
def garden():
    start = time.perf_counter()
    scene, cameras = garden_scene()
    built = time.perf_counter()
    out = render(scene, cameras[0], torch.float32)
    done = time.perf_counter()
    print(f"\ngarden: {len(scene)} Gaussians, scene build {built - start:.1f} s, "
          f"fp32 render {done - built:.1f} s; {out.stats}")
    return scene, cameras, out, done - built


def test_garden_scene(garden):
    scene, cameras, _, _ = garden
    assert len(scene) == 138766 and len(cameras) == 3
    assert scene.attribution == GARDEN_ATTRIBUTION and "Apache-2.0" in scene.attribution
    assert ((scene.opacities >= 0.1) & (scene.opacities <= 0.9)).all()
    assert (scene.scales > 0).all() and (scene.scales[:, 0] == scene.scales[:, 2]).all()
    assert (cameras[0].width, cameras[0].height) == (648, 420)


def test_garden_render(garden):
    _, _, out, seconds = garden
    assert seconds < 90
    assert out.image.shape == (420, 648, 3) and torch.isfinite(out.image).all()
    assert out.final_T.mean().item() < 0.99
    assert out.image.std().item() > 0.05
    s = out.stats
    assert s.pairs == s.skipped_power + s.skipped_alpha + s.blended + s.terminated
    assert s.blended == out.n_blended.sum().item()
    assert (out.n_contrib >= out.n_blended).all()


def test_knn_is_exact_on_a_subset(garden):
    scene = garden[0]
    points = scene.means[:3000]
    brute = torch.cdist(points.double(), points.double()).topk(4, largest=False).values
    torch.testing.assert_close(mean_knn_distance(points), brute[:, 1:].mean(1), rtol=1e-12,
                               atol=1e-12)
