"""Vectorized per-tile front-to-back blending of 3DGS, inria ``renderCUDA`` (DESIGN.md 7.2).

Per pixel and per Gaussian of its tile's list, in order: ``power = -0.5 (a dx^2 + c dy^2) -
b dx dy`` with ``d = mean - pixel``, skipped when ``power > 0``; ``alpha = min(0.99, o
exp(power))``, skipped when ``alpha < 1/255``; ``test_T = T (1 - alpha)``, and when ``test_T <
1e-4`` the pixel stops without blending that Gaussian; else ``C += color alpha T`` and ``T =
test_T``. Output ``C + T background``.

Vectorization of the early stop. Along a pixel's list let ``f_k = 1 - alpha_k`` for an entry
that is evaluated and not skipped, ``f_k = 1`` otherwise, and ``P_k = ((T_0 f_1) f_2) ... f_k``
the running product rounded after every multiply, exactly as the loop rounds ``T``. While the
pixel runs, the loop's ``T`` before entry ``k`` is bitwise ``P_{k-1}`` (multiplying by 1 is
exact) and its ``test_T`` is ``P_k``; a skipped entry has ``P_k = P_{k-1}``. So the loop stops at
the first ``k`` with ``P_k < 1e-4``. Rounded multiplication by ``f <= 1`` never increases a
non-negative value, so ``P`` is non-increasing and ``P_k >= 1e-4`` holds exactly on a prefix:
entry ``k`` is blended iff it is not skipped and ``P_k >= 1e-4``, with weight ``alpha_k
P_{k-1}``, and the final ``T`` is the last ``P_k >= 1e-4``. Lists are processed in chunks along
``k`` with ``T`` carried between chunks as ``P_0``, so tiles whose pixels have all stopped drop
out early; the product is a ``numpy.multiply.accumulate`` because it rounds every step in the
working dtype (``torch.cumprod`` accumulates fp32 in double), and ``exp`` is numpy's, which
gives the same bits whatever the position of an element in its array (torch's SIMD and scalar
tail paths can differ by an ulp), so a pair's decisions do not depend on the batching.
"""

import dataclasses

import numpy as np
import torch

from golden.splat_binning import BLOCK, bin_splats
from golden.splat_preprocess import preprocess


__all__ = ["ALPHA_MAX", "ALPHA_MIN", "T_MIN", "RasterStats", "RenderResult", "rasterize",
           "render"]


#: Clamp of alpha (keeps T > 0).
ALPHA_MAX = 0.99
#: Smallest alpha that is blended.
ALPHA_MIN = 1 / 255
#: A pixel stops when its transmittance would fall below this.
T_MIN = 1e-4

_PIXELS = BLOCK * BLOCK


@dataclasses.dataclass(frozen=True)
class RasterStats:
    """Work of one render, over (pixel, Gaussian) pairs of the tile lists (pixels inside the image).

    ``pairs = skipped_power + skipped_alpha + blended + terminated``: ``terminated`` counts the
    pair that triggered a pixel's early stop and every later pair of that pixel's list.

    Attributes
    ----------
    tile_entries : int
        Length of all tile lists together ((tile, Gaussian) pairs).
    pairs, skipped_power, skipped_alpha, blended, terminated : int
    terminated_pixels : int
        Pixels that stopped on ``test_T < 1e-4``.
    """
    tile_entries: int
    pairs: int
    skipped_power: int
    skipped_alpha: int
    blended: int
    terminated: int
    terminated_pixels: int

    @classmethod
    def from_counts(cls, tile_entries, pairs, skipped_power, skipped_alpha, blended,
                    terminated_pixels):
        """Stats with ``terminated`` as the pairs neither skipped nor blended."""
        return cls(tile_entries=tile_entries, pairs=pairs, skipped_power=skipped_power,
                   skipped_alpha=skipped_alpha, blended=blended,
                   terminated=pairs - skipped_power - skipped_alpha - blended,
                   terminated_pixels=terminated_pixels)


@dataclasses.dataclass(frozen=True)
class RenderResult:
    """Outputs of a render.

    Attributes
    ----------
    image : torch.Tensor, (H, W, 3)
        ``C + T background``.
    final_T : torch.Tensor, (H, W)
    n_blended : torch.Tensor, (H, W)
        ``int64``: Gaussians blended into each pixel.
    n_contrib : torch.Tensor, (H, W)
        ``int64``: 1-based position in the tile list of the last blended Gaussian (inria's
        ``n_contrib``), 0 when none; ``>= n_blended``.
    stats : RasterStats
    """
    image: torch.Tensor
    final_T: torch.Tensor
    n_blended: torch.Tensor
    n_contrib: torch.Tensor
    stats: RasterStats


def tile_pixels(grid):
    """Integer pixel coordinates ``(x, y)`` of every tile, each ``int64`` (tiles, 256)."""
    t = torch.arange(grid[0] * grid[1])[:, None]
    i = torch.arange(_PIXELS)
    return (t % grid[0]) * BLOCK + i % BLOCK, (t // grid[0]) * BLOCK + i // BLOCK


def untile(values, grid, width, height):
    """(tiles, 256, ...) per-tile pixel values to (height, width, ...) image order."""
    rest = values.shape[2:]
    img = values.reshape(grid[1], grid[0], BLOCK, BLOCK, *rest).transpose(1, 2)
    return img.reshape(grid[1] * BLOCK, grid[0] * BLOCK, *rest)[:height, :width]


def background_color(background, dtype):
    """``background`` as a (3,) tensor of ``dtype``; ``None`` is black."""
    if background is None:
        return torch.zeros(3, dtype=dtype)
    return torch.as_tensor(background, dtype=dtype).reshape(3)


def power_of(conic, dx, dy):
    """``-0.5 (a dx^2 + c dy^2) - b dx dy`` with inria's operation order (same rounding)."""
    a, b, c = conic
    return -0.5 * (a * dx * dx + c * dy * dy) - b * dx * dy


class _TileState:
    """Running per-pixel state of every tile, (tiles, 256[, 3])."""

    def __init__(self, grid, width, height, dtype):
        x, y = tile_pixels(grid)
        self.inside = (x < width) & (y < height)
        self.x, self.y = x.to(dtype), y.to(dtype)
        # Pixels of edge tiles outside the image are done from the start, as in inria.
        self.done = ~self.inside
        self.T = torch.ones(x.shape, dtype=dtype)
        self.C = torch.zeros(*self.x.shape, 3, dtype=dtype)
        self.n_blended = torch.zeros(self.x.shape, dtype=torch.int64)
        self.n_contrib = torch.zeros(self.x.shape, dtype=torch.int64)
        self.counts = np.zeros(4, dtype=np.int64)  # power, alpha, blended, terminated pixels


def _blend_chunk(splats, state, tiles, gauss, valid, start):
    """Blend list positions ``start .. start + K - 1`` of ``tiles`` into ``state``.

    ``gauss``, ``valid``: (B, K) Gaussian ids and which positions exist.
    """
    mean = splats.means2d[gauss]
    dx = mean[:, None, :, 0] - state.x[tiles][..., None]
    dy = mean[:, None, :, 1] - state.y[tiles][..., None]
    power = power_of(splats.conics[gauss][:, None].unbind(-1), dx, dy)
    expo = torch.from_numpy(np.exp(power.numpy()))
    alpha = (splats.opacities[gauss][:, None] * expo).clamp(max=ALPHA_MAX)
    skip_power = power > 0
    skip_alpha = ~skip_power & (alpha < ALPHA_MIN)
    done = state.done[tiles]
    live = valid[:, None] & ~done[:, :, None]
    take = live & ~skip_power & ~skip_alpha
    factors = torch.where(take, 1 - alpha, 1)
    prod = torch.from_numpy(np.multiply.accumulate(
        torch.cat([state.T[tiles, :, None], factors], -1).numpy(), axis=-1))
    alive = live & (prod[..., 1:] >= T_MIN)
    blend = take & alive
    weight = torch.where(blend, alpha * prod[..., :-1], 0)
    state.C[tiles] += weight @ splats.colors[gauss]
    n_alive = alive.sum(-1)
    state.T[tiles] = prod.gather(-1, n_alive[..., None])[..., 0]
    stopped = ~done & (live & ~alive).any(-1)
    state.done[tiles] = done | stopped
    state.n_blended[tiles] += blend.sum(-1)
    position = start + 1 + torch.arange(blend.shape[-1])
    last = torch.where(blend, position, 0).amax(-1)
    state.n_contrib[tiles] = torch.maximum(state.n_contrib[tiles], last)
    state.counts += [torch.count_nonzero(skip_power & alive).item(),
                     torch.count_nonzero(skip_alpha & alive).item(),
                     torch.count_nonzero(blend).item(), torch.count_nonzero(stopped).item()]


def rasterize(splats, tiles=None, background=None, *, chunk=32, batch=1 << 13):
    """Blend projected Gaussians into an image, tile by tile, vectorized.

    Parameters
    ----------
    splats : golden.splat_preprocess.Splats2D
        Every float field of one dtype (fp64 or fp32), which the blending uses throughout.
    tiles : golden.splat_binning.TileLists or None
        The tile lists; ``None`` bins ``splats``.
    background : sequence of 3 floats or None
        Background color; ``None`` is black.
    chunk : int
        List positions evaluated per step (tiles whose pixels have all stopped drop out
        between steps).
    batch : int
        Bound on ``tiles x chunk`` per step, i.e. on memory (``256 x batch`` pairs).

    Returns
    -------
    RenderResult
    """
    tiles = bin_splats(splats) if tiles is None else tiles
    dtype = splats.means2d.dtype
    state = _TileState(tiles.grid, splats.width, splats.height, dtype)
    lengths = tiles.offsets[1:] - tiles.offsets[:-1]
    k = torch.arange(chunk)
    for start in range(0, int(lengths.max()), chunk):
        active = torch.nonzero((lengths > start) & ~state.done.all(1))[:, 0]
        for sel in active.split(max(1, batch // chunk)):
            pos = start + k
            valid = pos < lengths[sel, None]
            index = (tiles.offsets[sel, None] + pos).clamp(max=max(len(tiles.ids) - 1, 0))
            _blend_chunk(splats, state, sel, tiles.ids[index], valid, start)

    pairs = int((lengths * state.inside.sum(1)).sum())
    stats = RasterStats.from_counts(len(tiles.ids), pairs, *(int(v) for v in state.counts))
    image = state.C + state.T[..., None] * background_color(background, dtype)
    size = (tiles.grid, splats.width, splats.height)
    return RenderResult(image=untile(image, *size), final_T=untile(state.T, *size),
                        n_blended=untile(state.n_blended, *size),
                        n_contrib=untile(state.n_contrib, *size), stats=stats)


def render(scene, camera, dtype=torch.float64, background=None):
    """Preprocess, bin and blend ``scene`` seen from ``camera`` (see :func:`rasterize`)."""
    return rasterize(preprocess(scene, camera, dtype), background=background)
