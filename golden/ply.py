"""Read and write 3D Gaussian Splatting .ply files (the layout inria's training code saves).

One ``vertex`` element of float32 properties: ``x, y, z``, ``nx, ny, nz`` (unused, written as
0), ``f_dc_0..2``, ``f_rest_0..R-1`` (any R, kept in file order), ``opacity`` (before the
sigmoid), ``scale_0..2`` (before the exponential), ``rot_0..3`` (w, x, y, z, not normalized).
The scene's attribution is written as header comments and read back from them.
"""

from pathlib import Path

import numpy as np
import plyfile
import torch

from golden.gaussians import GaussianScene


__all__ = ["load_ply", "save_ply"]


_XYZ = ("x", "y", "z")
_DC = ("f_dc_0", "f_dc_1", "f_dc_2")
_SCALE = ("scale_0", "scale_1", "scale_2")
_ROT = ("rot_0", "rot_1", "rot_2", "rot_3")


def _rest_names(names):
    """``f_rest_*`` property names in index order; raises on a gap."""
    rest = sorted((n for n in names if n.startswith("f_rest_")), key=lambda n: int(n[7:]))
    expected = [f"f_rest_{i}" for i in range(len(rest))]
    if rest != expected:
        missing = sorted(set(expected) - set(rest), key=lambda n: int(n[7:]))
        return rest, missing[0]
    return rest, None


def load_ply(path):
    """Load a 3DGS .ply as a :class:`GaussianScene` (fp32, activated opacities and scales).

    Parameters
    ----------
    path : path-like

    Raises
    ------
    ValueError
        Naming the file and the missing element or property.
    """
    path = Path(path)
    ply = plyfile.PlyData.read(str(path))
    if "vertex" not in [e.name for e in ply.elements]:
        raise ValueError(f"{path}: no 'vertex' element (not a 3D Gaussian Splatting .ply)")
    vertex = ply["vertex"]
    names = [p.name for p in vertex.properties]
    rest, gap = _rest_names(names)
    for name in (*_XYZ, *_DC, "opacity", *_SCALE, *_ROT, *([gap] if gap else [])):
        if name not in names:
            raise ValueError(f"{path}: vertex property '{name}' is missing "
                             f"(3DGS layout needs x,y,z, f_dc_0..2, opacity, scale_0..2, "
                             f"rot_0..3)")

    def column(*props):
        values = [np.asarray(vertex[p], dtype=np.float32) for p in props]
        return torch.from_numpy(np.stack(values, -1) if values
                                else np.zeros((len(vertex.data), 0), dtype=np.float32))

    return GaussianScene(means=column(*_XYZ), quats=column(*_ROT),
                         scales=torch.exp(column(*_SCALE)),
                         opacities=torch.sigmoid(column("opacity")[:, 0]),
                         sh_dc=column(*_DC), sh_rest=column(*rest),
                         attribution="\n".join(ply.comments))


def save_ply(scene, path):
    """Write ``scene`` as a binary 3DGS .ply (float32; opacities and scales de-activated).

    Opacities of exactly 0 or 1 and scales of 0 become infinite logits/logs, as in the format.
    """
    scene = scene.to(torch.float32)
    n = len(scene)
    rest = [f"f_rest_{i}" for i in range(scene.sh_rest.shape[1])]
    columns = {
        **dict(zip(_XYZ, scene.means.T)),
        **dict(zip(("nx", "ny", "nz"), torch.zeros(3, n))),
        **dict(zip(_DC, scene.sh_dc.T)),
        **dict(zip(rest, scene.sh_rest.T)),
        "opacity": torch.logit(scene.opacities),
        **dict(zip(_SCALE, torch.log(scene.scales).T)),
        **dict(zip(_ROT, scene.quats.T)),
    }
    data = np.empty(n, dtype=[(name, "f4") for name in columns])
    for name, values in columns.items():
        data[name] = values.numpy()
    element = plyfile.PlyElement.describe(data, "vertex")
    comments = scene.attribution.splitlines()
    plyfile.PlyData([element], comments=comments).write(str(Path(path)))
