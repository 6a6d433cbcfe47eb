"""Tests of the Gaussian Blending Unit's golden side (DESIGN.md 7.2, 7.3)."""

import torch

from golden.splat_preprocess import Splats2D


def make_splats(means2d, conics, opacities, colors, depths=None, radii=None, *, width=16,
                height=16, dtype=torch.float64):
    """Splats2D from lists; depths default to the index order, radii to 8 pixels."""
    n = len(means2d)

    def t(values):
        return torch.tensor(values, dtype=dtype)

    return Splats2D(means2d=t(means2d).reshape(n, 2), conics=t(conics).reshape(n, 3),
                    opacities=t(opacities), colors=t(colors).reshape(n, 3),
                    depths=t(list(range(1, n + 1)) if depths is None else depths),
                    radii=torch.tensor([8] * n if radii is None else radii),
                    width=width, height=height)
