"""``python -m sw.render``: PNG and JSON written, figures consistent with the model they come
from, a .ply scene with a JSON camera rendering the same image as the scene it was saved from,
and one-line errors for bad input."""

import json

import pytest
import torch
from matplotlib import pyplot

from golden.gbu_decisions import decision_agreement
from golden.gbu_model import render_gbu
from golden.ply import save_ply
from golden.splat_binning import bin_splats
from golden.splat_preprocess import preprocess
from golden.splat_scenes import synthetic_scene
from hw.gbu.config import GBUConfig
from sw.frame import load_scene, psnr, render_frame
from sw.render import main


def test_model_frame_figures(tmp_path):
    assert main(["--scene", "synthetic", "--resolution", "48x40", "--backend", "model",
                 "--param", "lanes=2", "--fmax", "100", "--out", str(tmp_path),
                 "--no-progress"]) == 0
    report = json.loads((tmp_path / "synthetic0-model.json").read_text())
    image = pyplot.imread(tmp_path / "synthetic0-model.png")
    assert image.shape[:2] == (40, 48)
    scene, camera = synthetic_scene(0, 48, 40)
    splats = preprocess(scene, camera)
    tiles = bin_splats(splats)
    result = render_gbu(GBUConfig(lanes=2), splats, tiles, record_decisions=True)
    assert report["cycles"] == result.cycles and report["evaluations"] == result.evaluations
    assert report["lane_utilization"] == pytest.approx(result.evaluations / (2 * result.cycles))
    assert 0 < report["lane_utilization"] <= 1 and 0 < report["interval_skip_rate"] < 1
    assert report["fps_at_fmax"] == pytest.approx(100e6 / result.cycles)
    assert report["psnr_db_vs_fp64"] > 50
    agree, total = decision_agreement(result, splats, tiles)
    assert report["decision_pairs"] == total > 0
    assert report["decisions_agree_vs_fp64"] == pytest.approx(agree / total)
    assert report["decisions_agree_vs_fp64"] >= 0.999


def test_rtl_backend_renders_the_models_image():
    # The config of tests/gbu/test_cocotb_gbu.py's "irss-2", so the Verilator build is shared.
    config = GBUConfig(lanes=2, bg_r=1 << 12, bg_b=(1 << 14) - 1)
    scene, camera = synthetic_scene(3, 48, 40)
    rtl = render_frame(scene, camera, backend="rtl", config=config, fmax_hz=50e6)
    model = render_frame(scene, camera, backend="model", config=config)
    assert torch.equal(rtl.image, model.image)
    # Measured cycles add the tiles' read-out and the pipeline to the lanes' shading.
    assert rtl.report["cycles"] > model.report["cycles"]
    assert rtl.report["fps_at_fmax"] == pytest.approx(50e6 / rtl.report["cycles"])


def test_reference_backend(tmp_path, capsys):
    assert main(["--scene", "synthetic", "--seed", "2", "--backend", "reference",
                 "--out", str(tmp_path), "--no-progress"]) == 0
    report = json.loads((tmp_path / "synthetic2-reference.json").read_text())
    assert report["dtype"] == "float32" and report["psnr_db_vs_fp64"] > 40
    assert report["stats"]["pairs"] > 0
    assert "synthetic2-reference.png" in capsys.readouterr().out


def test_ply_scene_with_camera_file(tmp_path):
    scene, camera = synthetic_scene(1, 40, 32)
    save_ply(scene.to(torch.float32), tmp_path / "s.ply")
    (tmp_path / "cam.json").write_text(json.dumps({
        "viewmat": camera.viewmat.tolist(), "fx": camera.fx, "fy": camera.fy, "cx": camera.cx,
        "cy": camera.cy, "width": camera.width, "height": camera.height}))
    loaded, cam, name = load_scene(str(tmp_path / "s.ply"), camera_file=tmp_path / "cam.json")
    assert name == "s" and (cam.width, cam.height) == (40, 32)
    direct = render_frame(scene.to(torch.float32), camera, backend="model")
    via_ply = render_frame(loaded, cam, backend="model")
    assert psnr(via_ply.image, direct.image) > 60


@pytest.mark.parametrize("args, message", [
    (["--param", "lanes=0"], "lanes"),
    (["--param", "nonsense=1"], "no parameter 'nonsense'"),
    (["--scene", "x.obj"], "expected 'garden', 'synthetic' or a .ply file"),
    (["--scene", "x.ply"], "a .ply holds no camera"),
    (["--scene", "synthetic", "--fmax", "0"], "--fmax"),
    (["--scene", "synthetic", "--build-report", "missing.json"], "--build-report missing.json"),
])
def test_bad_input_is_one_line(tmp_path, capsys, args, message):
    assert main([*args, "--out", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_bad_resolution_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit):
        main(["--resolution", "12by4"])
    assert "is not WIDTHxHEIGHT" in capsys.readouterr().err
