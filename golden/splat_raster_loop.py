"""The blending spec as a literal per-pixel loop (DESIGN.md 7.2), for small scenes.

One scalar at a time, as inria's ``renderCUDA`` runs per thread: fp64 in Python floats with
``math.exp``, fp32 in ``numpy.float32`` scalars (every operation rounds to fp32, as CUDA does;
``numpy.exp`` is numpy's fp32 exp, not CUDA's ``expf``). It is what
:func:`golden.splat_raster.rasterize` is proven against; it takes seconds for a few thousand
pixels.
"""

import math

import numpy as np
import torch

from golden.splat_binning import BLOCK, bin_splats
from golden.splat_raster import (ALPHA_MAX, ALPHA_MIN, T_MIN, RasterStats, RenderResult,
                                 background_color, power_of)


__all__ = ["rasterize_loop"]


def _scalar_ops(dtype):
    """``(to_scalar, exp)`` doing arithmetic in ``dtype``."""
    if dtype == torch.float64:
        return float, math.exp
    if dtype == torch.float32:
        return np.float32, np.exp
    raise TypeError(f"golden.splat_raster_loop: dtype must be float64 or float32, not {dtype}")


def _shade(pixel, gaussians, num, exp):
    """Run one pixel over its tile's list.

    Returns ``(C, T, n_blended, n_contrib, skipped_power, skipped_alpha, stopped)``.
    """
    px, py = pixel
    alpha_max, alpha_min, t_min = num(ALPHA_MAX), num(ALPHA_MIN), num(T_MIN)
    T = num(1)
    C = [num(0)] * 3
    blended = contrib = skipped_power = skipped_alpha = 0
    for position, (mean, conic, opacity, color) in enumerate(gaussians, 1):
        power = power_of(conic, mean[0] - px, mean[1] - py)
        if power > 0:
            skipped_power += 1
            continue
        alpha = min(alpha_max, opacity * exp(power))
        if alpha < alpha_min:
            skipped_alpha += 1
            continue
        test_T = T * (num(1) - alpha)
        if test_T < t_min:
            return C, T, blended, contrib, skipped_power, skipped_alpha, True
        C = [acc + col * alpha * T for acc, col in zip(C, color)]
        T = test_T
        blended += 1
        contrib = position
    return C, T, blended, contrib, skipped_power, skipped_alpha, False


def rasterize_loop(splats, tiles=None, background=None):
    """Same contract as :func:`golden.splat_raster.rasterize`, one pixel and one Gaussian at a time."""
    dtype = splats.means2d.dtype
    num, exp = _scalar_ops(dtype)
    tiles = bin_splats(splats) if tiles is None else tiles
    W, H = splats.width, splats.height
    means, conics, colors = ([[num(v) for v in row] for row in t.tolist()]
                             for t in (splats.means2d, splats.conics, splats.colors))
    opacities = [num(v) for v in splats.opacities.tolist()]
    image = torch.zeros(H, W, 3, dtype=dtype)
    final_T = torch.ones(H, W, dtype=dtype)
    n_blended = torch.zeros(H, W, dtype=torch.int64)
    n_contrib = torch.zeros(H, W, dtype=torch.int64)
    counts = [0, 0, 0, 0]
    pairs = 0
    for t in range(tiles.grid[0] * tiles.grid[1]):
        ids = tiles.tile(t).tolist()
        gaussians = [(means[g], conics[g], opacities[g], colors[g]) for g in ids]
        x0, y0 = (t % tiles.grid[0]) * BLOCK, (t // tiles.grid[0]) * BLOCK
        for y in range(y0, min(y0 + BLOCK, H)):
            for x in range(x0, min(x0 + BLOCK, W)):
                C, T, nb, nc, sp, sa, stopped = _shade((num(x), num(y)), gaussians, num, exp)
                image[y, x] = torch.tensor([float(v) for v in C], dtype=dtype)
                final_T[y, x] = float(T)
                n_blended[y, x], n_contrib[y, x] = nb, nc
                counts = [a + b for a, b in zip(counts, (sp, sa, nb, int(stopped)))]
                pairs += len(ids)
    stats = RasterStats.from_counts(len(tiles.ids), pairs, *counts)
    image = image + final_T[..., None] * background_color(background, dtype)
    return RenderResult(image=image, final_T=final_T, n_blended=n_blended,
                        n_contrib=n_contrib, stats=stats)
