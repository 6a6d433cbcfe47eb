"""golden.ply: 3DGS .ply round trip and error messages."""

import dataclasses

import numpy as np
import plyfile
import pytest
import torch

from golden.ply import load_ply, save_ply
from golden.splat_scenes import synthetic_scene


def test_round_trip(tmp_path):
    scene, _ = synthetic_scene(0, counts={"random": 20, "needle": 4})
    scene = scene.to(torch.float32)
    rest = torch.arange(24 * 9, dtype=torch.float32).reshape(24, 9)
    scene = dataclasses.replace(scene, sh_rest=rest, attribution="line one\nApache-2.0 line two")
    path = tmp_path / "scene.ply"
    save_ply(scene, path)
    back = load_ply(path)
    for name in ("means", "quats", "sh_dc", "sh_rest"):
        assert torch.equal(getattr(back, name), getattr(scene, name)), name
    # Opacity and scale go through logit/log and back in fp32.
    torch.testing.assert_close(back.opacities, scene.opacities, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(back.scales, scene.scales, rtol=1e-6, atol=0)
    assert back.attribution == "line one\nApache-2.0 line two"
    names = [p.name for p in plyfile.PlyData.read(str(path))["vertex"].properties]
    assert names[:9] == ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    assert names[-8:] == ["opacity", "scale_0", "scale_1", "scale_2",
                          "rot_0", "rot_1", "rot_2", "rot_3"]


def _write(path, names, element="vertex"):
    data = np.zeros(3, dtype=[(n, "f4") for n in names])
    plyfile.PlyData([plyfile.PlyElement.describe(data, element)]).write(str(path))


FULL = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1",
        "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]


def test_activations_on_load(tmp_path):
    path = tmp_path / "min.ply"
    _write(path, FULL)  # all zeros: opacity logit 0, log-scale 0
    scene = load_ply(path)
    assert scene.opacities.tolist() == [0.5] * 3 and scene.scales.tolist() == [[1.0] * 3] * 3
    assert scene.sh_rest.shape == (3, 0)


@pytest.mark.parametrize("drop", ["opacity", "scale_2", "rot_0", "y"])
def test_missing_property_is_named(tmp_path, drop):
    path = tmp_path / "bad.ply"
    _write(path, [n for n in FULL if n != drop])
    with pytest.raises(ValueError, match=rf"bad\.ply: vertex property '{drop}' is missing"):
        load_ply(path)


def test_gap_in_f_rest_is_named(tmp_path):
    path = tmp_path / "gap.ply"
    _write(path, FULL + ["f_rest_0", "f_rest_2"])
    with pytest.raises(ValueError, match="gap.ply: vertex property 'f_rest_1' is missing"):
        load_ply(path)


def test_missing_vertex_element_is_named(tmp_path):
    path = tmp_path / "face.ply"
    _write(path, ["x"], element="face")
    with pytest.raises(ValueError, match=r"face\.ply: no 'vertex' element"):
        load_ply(path)
