"""3D Gaussian scene and pinhole camera containers for the splatting golden model (DESIGN.md 7.3).

A scene holds activated parameters, the values the renderer uses: opacities after the sigmoid,
scales after the exponential. The quaternions stay as stored (w, x, y, z, not normalized);
:func:`golden.splat_preprocess.preprocess` normalizes them as inria's model does. Only the SH
degree-0 coefficients drive the color; the higher bands are carried so a .ply round-trips.
"""

import dataclasses

import torch


__all__ = ["GaussianScene", "Camera"]


@dataclasses.dataclass(frozen=True)
class GaussianScene:
    """N 3D Gaussians.

    Parameters
    ----------
    means : torch.Tensor, (N, 3)
        World-space centres.
    quats : torch.Tensor, (N, 4)
        Rotations (w, x, y, z), any non-zero norm.
    scales : torch.Tensor, (N, 3)
        Standard deviations along the rotated axes (activated, >= 0).
    opacities : torch.Tensor, (N,)
        Activated opacities in [0, 1].
    sh_dc : torch.Tensor, (N, 3)
        SH degree-0 coefficients ``f_dc`` per RGB channel.
    sh_rest : torch.Tensor, (N, R)
        Higher SH coefficients ``f_rest_*`` in file order (R may be 0); not rendered.
    attribution : str
        Provenance and licence of the data, written into every file the scene is saved to.
    """
    means: torch.Tensor
    quats: torch.Tensor
    scales: torch.Tensor
    opacities: torch.Tensor
    sh_dc: torch.Tensor
    sh_rest: torch.Tensor
    attribution: str = ""

    def __post_init__(self):
        n = self.means.shape[0]
        expected = {"means": (n, 3), "quats": (n, 4), "scales": (n, 3), "opacities": (n,),
                    "sh_dc": (n, 3)}
        for name, shape in expected.items():
            got = tuple(getattr(self, name).shape)
            if got != shape:
                raise ValueError(f"GaussianScene.{name}: expected shape {shape}, got {got}")
        if self.sh_rest.dim() != 2 or self.sh_rest.shape[0] != n:
            raise ValueError(f"GaussianScene.sh_rest: expected shape ({n}, R), "
                             f"got {tuple(self.sh_rest.shape)}")

    def __len__(self):
        return self.means.shape[0]

    def to(self, dtype):
        """The same scene with every tensor converted to ``dtype``."""
        return dataclasses.replace(self, **{f.name: getattr(self, f.name).to(dtype)
                                            for f in dataclasses.fields(self)
                                            if f.name != "attribution"})


@dataclasses.dataclass(frozen=True)
class Camera:
    """Pinhole camera, OpenCV axes (x right, y down, z forward), as COLMAP and inria use.

    Parameters
    ----------
    viewmat : torch.Tensor, (4, 4)
        World-to-camera transform: ``p_cam = viewmat[:3, :3] @ p + viewmat[:3, 3]``.
    fx, fy, cx, cy : float
        Intrinsics in pixels, gsplat convention (pixel ``i`` covers ``[i, i + 1)``).
    width, height : int
        Image size in pixels.
    """
    viewmat: torch.Tensor
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self):
        if tuple(self.viewmat.shape) != (4, 4):
            raise ValueError(f"Camera.viewmat: expected shape (4, 4), got "
                             f"{tuple(self.viewmat.shape)}")
        for name in ("width", "height"):
            if getattr(self, name) < 1:
                raise ValueError(f"Camera.{name}: must be >= 1, got {getattr(self, name)}")

    @property
    def tan_fov(self):
        """``(tan(fovx / 2), tan(fovy / 2)) = (W / (2 fx), H / (2 fy))`` as inria derives them."""
        return self.width / (2 * self.fx), self.height / (2 * self.fy)
