"""golden.splat_binning: tile lists sorted by depth, ties broken by Gaussian index."""

import pytest

from golden.splat_binning import bin_splats
from golden.splat_raster import rasterize
from tests.gbu import make_splats


def test_lists_are_sorted_by_depth_then_index():
    # Four Gaussians on tile 0 of a 32 x 16 image; 1 and 3 tie in depth, 2 also spans tile 1.
    s = make_splats([[4.0, 4.0], [5.0, 5.0], [15.0, 6.0], [6.0, 6.0]], [1.0, 0.0, 1.0] * 4,
                    [0.5] * 4, [[1, 1, 1]] * 4, depths=[3.0, 2.0, 1.0, 2.0], radii=[2, 2, 3, 2],
                    width=32, height=16)
    tiles = bin_splats(s)
    assert tiles.grid == (2, 1)
    assert tiles.tile(0).tolist() == [2, 1, 3, 0]
    assert tiles.tile(1).tolist() == [2]


def test_culled_gaussians_are_not_listed():
    s = make_splats([[4.0, 4.0], [4.0, 4.0]], [1.0, 0.0, 1.0] * 2, [0.5] * 2, [[1, 1, 1]] * 2,
                    radii=[0, 3])
    assert bin_splats(s).ids.tolist() == [1]


def test_depth_tie_order_changes_pixels():
    # Exact duplicates but for color: the lower index is in front, and swapping indices
    # swaps which color dominates.
    red, blue = [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]

    def pixel(colors):
        s = make_splats([[8.0, 8.0]] * 2, [0.5, 0.0, 0.5] * 2, [0.8] * 2, colors,
                        depths=[2.0, 2.0])
        return rasterize(s).image[8, 8].tolist()

    front_red = pixel([red, blue])
    front_blue = pixel([blue, red])
    assert front_red == pytest.approx([0.8, 0.0, 0.8 * 0.2], abs=1e-15)
    assert front_blue == pytest.approx([0.8 * 0.2, 0.0, 0.8], abs=1e-15)
    assert front_red != front_blue
