"""Per (pixel, Gaussian) decisions of the fp64 reference in the codes of
:mod:`golden.gbu_model` (``SKIPPED``, ``BLENDED``, ``TERMINATED``), and how often the bit-exact
GBU model takes the same one (DESIGN.md 7.2 accuracy target: >= 99.9% of the pairs)."""

import numpy as np
import torch

from golden.gbu_model import BLENDED, SKIPPED, TERMINATED
from golden.splat_raster import ALPHA_MAX, ALPHA_MIN, T_MIN, power_of, tile_pixels


__all__ = ["reference_decisions", "decision_agreement"]


def reference_decisions(splats, tiles):
    """Per tile, ``(decisions, inside)``: the fp64 decision of every (list position, pixel),
    an ``(n, 256)`` tensor, and which of the tile's 256 pixels are inside the image."""
    out = []
    for t, (x, y) in enumerate(zip(*tile_pixels(tiles.grid))):
        x, y = x.to(torch.float64), y.to(torch.float64)
        inside = (x < splats.width) & (y < splats.height)
        ids = tiles.ids[int(tiles.offsets[t]):int(tiles.offsets[t + 1])]
        m = splats.means2d[ids]
        power = power_of(splats.conics[ids][:, None].unbind(-1), m[:, None, 0] - x,
                         m[:, None, 1] - y)
        alpha = (splats.opacities[ids][:, None] * torch.from_numpy(np.exp(power.numpy()))
                 ).clamp(max=ALPHA_MAX)
        take = (power <= 0) & (alpha >= ALPHA_MIN)
        factors = torch.where(take, 1 - alpha, 1).numpy()
        prod = np.multiply.accumulate(np.concatenate([np.ones((1, len(x))), factors]), axis=0)
        alive = torch.from_numpy(prod[1:] >= T_MIN)
        dec = torch.where(~alive, TERMINATED, torch.where(take, BLENDED, SKIPPED))
        out.append((dec, inside))
    return out


def decision_agreement(result, splats, tiles):
    """``(agree, total)``: of the (pixel inside the image, Gaussian of its tile's list) pairs,
    those where ``result`` (a :class:`~golden.gbu_model.GBUResult` rendered with
    ``record_decisions=True``) decides as the fp64 reference."""
    if any(r.decisions is None for r in result.tiles):
        raise ValueError("result has no decisions: render it with record_decisions=True")
    agree = total = 0
    for r, (dec, inside) in zip(result.tiles, reference_decisions(splats, tiles)):
        agree += int((r.decisions.long() == dec)[:, inside].sum())
        total += int(inside.sum()) * dec.shape[0]
    return agree, total
