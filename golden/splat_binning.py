"""Tile binning and depth sort of projected Gaussians, as inria's forward pass does it.

Each Gaussian is duplicated into every 16x16 tile of its rectangle (``getRect``), in Gaussian
index order and, within one Gaussian, row by row (``duplicateWithKeys``). The (tile, depth) keys
are then sorted by a stable radix sort, so exact depth ties keep Gaussian index order; here two
stable sorts (depth, then tile) give the same order. Depth is compared in the splats' dtype
(inria sorts fp32 depth bits; the fp64 reference sorts fp64 depths).
"""

import dataclasses

import torch


__all__ = ["BLOCK", "tile_grid", "tile_rect", "TileLists", "bin_splats"]


#: Tile side in pixels (inria ``BLOCK_X = BLOCK_Y = 16``).
BLOCK = 16


def tile_grid(width, height):
    """Number of tiles ``(tiles_x, tiles_y)`` covering a ``width`` x ``height`` image."""
    return (width + BLOCK - 1) // BLOCK, (height + BLOCK - 1) // BLOCK


def tile_rect(means2d, radii, width, height):
    """Tile rectangle of each Gaussian, inria ``getRect``.

    ``rect_min = clamp(int((p - r) / 16))`` and ``rect_max = clamp(int((p + r + 15) / 16))``,
    clamped to ``[0, grid]``; the float-to-int conversion truncates toward zero, which equals the
    floor here because the clamp sends every negative quotient to 0 either way.

    Parameters
    ----------
    means2d : torch.Tensor, (N, 2)
        Pixel positions.
    radii : torch.Tensor, (N,)
        Integer-valued radii in pixels.
    width, height : int
        Image size.

    Returns
    -------
    rect_min, rect_max : torch.Tensor
        ``int64`` (N, 2) as (x, y): tiles ``rect_min <= t < rect_max`` are touched.
    """
    grid = torch.tensor(tile_grid(width, height))
    r = radii.to(means2d.dtype)[:, None]
    lo = torch.trunc((means2d - r) / BLOCK).to(torch.int64)
    hi = torch.trunc((means2d + r + (BLOCK - 1)) / BLOCK).to(torch.int64)
    return lo.clamp(min=0).minimum(grid), hi.clamp(min=0).minimum(grid)


@dataclasses.dataclass(frozen=True)
class TileLists:
    """Front-to-back Gaussian list of every tile.

    Attributes
    ----------
    grid : tuple of int
        ``(tiles_x, tiles_y)``; tile ``t`` is at ``(t % tiles_x, t // tiles_x)``.
    offsets : torch.Tensor
        ``int64`` (tiles + 1,): tile ``t``'s list is ``ids[offsets[t]:offsets[t + 1]]``.
    ids : torch.Tensor
        ``int64`` (P,): Gaussian indices.
    """
    grid: tuple
    offsets: torch.Tensor
    ids: torch.Tensor

    def tile(self, t):
        """Gaussian indices of tile ``t``, front to back."""
        return self.ids[self.offsets[t]:self.offsets[t + 1]]


def bin_splats(splats):
    """Tile lists of projected Gaussians (those with ``radii > 0``).

    Parameters
    ----------
    splats : golden.splat_preprocess.Splats2D

    Returns
    -------
    TileLists
    """
    grid = tile_grid(splats.width, splats.height)
    rect_min, rect_max = tile_rect(splats.means2d, splats.radii, splats.width, splats.height)
    size = rect_max - rect_min
    touched = torch.where(splats.radii > 0, size[:, 0] * size[:, 1], 0)
    gid = torch.repeat_interleave(torch.arange(len(touched)), touched)
    first = torch.cumsum(touched, 0) - touched
    local = torch.arange(len(gid)) - first[gid]
    tx = rect_min[gid, 0] + local % size[gid, 0]
    ty = rect_min[gid, 1] + local // size[gid, 0]
    tile = ty * grid[0] + tx
    order = torch.sort(splats.depths[gid], stable=True).indices
    order = order[torch.sort(tile[order], stable=True).indices]
    counts = torch.bincount(tile, minlength=grid[0] * grid[1])
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(counts, 0)])
    return TileLists(grid=grid, offsets=offsets, ids=gid[order])
