# amaranth: UnusedElaboratable=no
# (SoC.address_map_of makes the cores for their signatures only.)
"""``python -m sw.soc`` over the simulated SoC (amaranth.sim, through the UART pins): info, a
GEMM from .npy files and a seeded random one, KV steps and reads, every result compared with the
golden models here; bad invocations are one line on stderr. ``gbu-tile`` against the golden
model's pixels (see ``_ModelGBU``)."""

import contextlib
import io
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from matplotlib import pyplot

from golden.gemm import matmul_int, requantize
from golden.kv_cache import KVCache
from golden.lacache import make_policy
from golden.splat_binning import bin_splats
from golden.splat_preprocess import preprocess
from golden.splat_scenes import synthetic_scene
from hw.soc.config import SoCConfig
from hw.soc.soc import SoC
from sw import soc_cli
from sw.soc import SIM_SOC_CONFIG
from sw.soc_cli import main

GEMM_ONLY = ["--sim", "--param", "kv_layers=0"]
KV_ONLY = ["--sim", "--param", "gemm_rows=0"]


def _run(argv):
    out = io.StringIO()
    return main(argv, out=out), out.getvalue()


def test_info_checks_and_prints_the_map():
    code, text = _run([*GEMM_ONLY, "info"])
    assert code == 0
    map_ = SoC.address_map_of(SIM_SOC_CONFIG.replace(kv_layers=0))
    assert text.startswith(f"info words match the address map (magic {map_['info']['magic']:#010x}"
                           f", map CRC-32 {map_['info']['map_crc32']:#010x})")
    a = next(r for r in map_["regions"] if r["name"] == "gemm_a")
    assert f"  gemm_a       words {a['base']:#07x}..{a['base'] + a['size'] - 1:#07x}" in text
    assert "kv_" not in text


def test_gemm_from_npy_files(tmp_path):
    gen = torch.Generator().manual_seed(11)
    a = torch.randint(-128, 128, (3, 5), generator=gen)
    w = torch.randint(-128, 128, (5, 3), generator=gen)
    shift = torch.tensor([19, 20, 21])
    np.save(tmp_path / "a.npy", a.numpy().astype(np.int8))
    np.save(tmp_path / "w.npy", w.numpy().astype(np.int8))
    np.save(tmp_path / "shift.npy", shift.numpy())
    code, text = _run([*GEMM_ONLY, "gemm", "--a", str(tmp_path / "a.npy"),
                       "--w", str(tmp_path / "w.npy"), "--multiplier", "0x3000",
                       "--shift", str(tmp_path / "shift.npy"), "--relu",
                       "--out", str(tmp_path / "c.npy"), "--check"])
    assert code == 0, text
    want = requantize(matmul_int(a, w), torch.full((3,), 0x3000), shift,
                      rounding=SIM_SOC_CONFIG.gemm.rounding, relu=True)
    got = np.load(tmp_path / "c.npy")
    assert got.dtype == np.int8 and got.tolist() == want.tolist()
    assert 0 < np.count_nonzero(got) and np.count_nonzero(got == 127) < got.size
    assert text.endswith(f"written to {tmp_path / 'c.npy'}\nmatches the golden model\n")


def test_gemm_random_shape():
    code, text = _run([*GEMM_ONLY, "gemm", "--shape", "2x3x3", "--seed", "4", "--check"])
    assert code == 0, text
    assert text.startswith("C = requant(A @ W): 2x3 int8\n[[")
    assert text.endswith("matches the golden model\n")


def _golden_rows(kv, rows, layer):
    cache = KVCache(kv.layers, kv.kv_heads, kv.head_dim, make_policy(kv), dtype=torch.int64)
    for token in rows:
        for n, (k, v) in enumerate(token):
            cache.append(n, k.reshape(kv.kv_heads, 1, kv.head_dim),
                         v.reshape(kv.kv_heads, 1, kv.head_dim))
        cache.compact()
    k, v, pos = cache.read(layer)
    return [(p, k[:, j].flatten().tolist(), v[:, j].flatten().tolist())
            for j, p in enumerate(pos.tolist())]


def test_kv_steps_from_npy_then_read(tmp_path):
    kv = SIM_SOC_CONFIG.kv
    n = kv.kv_heads * kv.head_dim
    gen = torch.Generator().manual_seed(5)
    rows = torch.randint(0, 1 << kv.elem_bits, (2, kv.layers, 2, n), generator=gen)
    np.save(tmp_path / "rows.npy", rows.numpy())
    code, text = _run([*KV_ONLY, "kv-step", "--rows", str(tmp_path / "rows.npy"),
                       "--read", "16", "--check"])
    assert code == 0, text
    want = _golden_rows(kv, rows, 16)
    lines = [f"  {p:4}: {' '.join(map(str, k))} | {' '.join(map(str, v))}" for p, k, v in want]
    assert text == "\n".join([f"appended 2 tokens to {kv.layers} layers",
                              f"layer 16: {len(want)} rows (pos: k | v)", *lines,
                              "layers [16] match the golden cache", ""])


def test_kv_read_of_a_fresh_cache(tmp_path):
    code, text = _run([*KV_ONLY, "kv-read", "3", "--out", str(tmp_path / "rows.npz")])
    assert code == 0 and text == "layer 3: 0 rows (pos: k | v)\n"
    assert np.load(tmp_path / "rows.npz")["pos"].size == 0


@pytest.mark.parametrize("argv, message", [
    (["--port", "/dev/null", "info"], "--port needs --map"),
    (["--sim", "--param", "kv_layer=3", "info"], "SoCConfig has no parameter 'kv_layer'"),
    (["--sim", "--param", "window_depth=2", "info"], "SoCConfig.window_depth=2 is out of range"),
    (["--sim", "gemm"], "gemm: give the operands (--a and --w) or a random --shape"),
    (["--sim", "gemm", "--a", "a.npy", "--w", "w.npy"],
     "gemm: --multiplier and --shift are required with --a/--w"),
    (["--sim", "gemm", "--shape", "1x1x1", "--a", "a.npy"], "gemm: give --shape or --a/--w"),
])
def test_bad_invocation_is_one_line(argv, message, capsys):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1, err


def test_module_entry_point_on_a_missing_port(tmp_path):
    (tmp_path / "map.json").write_text(json.dumps(SoC.address_map_of(SIM_SOC_CONFIG)))
    result = subprocess.run([sys.executable, "-m", "sw.soc", "--port", str(tmp_path / "ttyNONE"),
                             "--map", str(tmp_path / "map.json"), "info"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("error: cannot open serial port") and \
        result.stderr.count("\n") == 1, result.stderr


def test_gbu_tile_reads_its_scene_before_opening_the_board(tmp_path, capsys):
    (tmp_path / "map.json").write_text(json.dumps(SoC.address_map_of(SoCConfig())))
    assert main(["--port", str(tmp_path / "ttyNONE"), "--map", str(tmp_path / "map.json"),
                 "gbu-tile", "--scene", "nowhere.ply"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: scene nowhere.ply: a .ply holds no camera"), err


class _ModelGBU:
    """Stands in for a board's GBU in the ``gbu-tile`` tests below: it answers with the golden
    model's pixels (``bad`` pixels altered), so that they test the command (scene, tile, image,
    check) in seconds; the GBU behind the UART is tested against the model in
    tests/soc/test_cocotb_soc.py, and a tile in amaranth.sim takes minutes."""

    def __init__(self, bad=()):
        self.config = SoCConfig(gbu_lanes=1)
        self.bad = bad
        self.device = contextlib.nullcontext()
        self.calls = []

    def gbu_config(self):
        return self.config.gbu

    def gbu_tile(self, splats, *, cols, rows):
        self.calls.append((len(splats), cols, rows))
        want = self._case["pixels"]
        return [{"color": p[:3], "t": p[3] + (n in self.bad), "n_contrib": p[4],
                 "n_blended": p[5]} for n, p in enumerate(want)]


@pytest.fixture
def model_gbu(monkeypatch):
    def make(bad=()):
        gbu = _ModelGBU(bad)
        real_case = soc_cli.tile_case

        def tile_case(*args):
            gbu._case = real_case(*args)
            return gbu._case
        monkeypatch.setattr(soc_cli, "tile_case", tile_case)
        monkeypatch.setattr(soc_cli, "_client", lambda args: gbu)
        return gbu
    return make


def test_gbu_tile_shades_the_busiest_tile_and_writes_an_image(model_gbu, tmp_path):
    gbu = model_gbu()
    code, text = _run(["--sim", "gbu-tile", "--seed", "3", "--out", str(tmp_path / "t.png"),
                       "--check"])
    assert code == 0, text
    scene, camera = synthetic_scene(3, 64, 48)
    tiles = bin_splats(preprocess(scene, camera))
    busiest = int(tiles.offsets.diff().argmax())
    count = len(tiles.tile(busiest))
    assert gbu.calls == [(count, 16, 16)]
    assert text.startswith(f"synthetic3 tile {busiest} at ")
    assert f": {count} Gaussians, 16x16 pixels inside the image" in text
    assert text.endswith("matches the golden model\n")
    image = pyplot.imread(tmp_path / "t.png")
    assert image.shape[:2] == (128, 128)


def test_gbu_tile_reports_a_wrong_pixel(model_gbu, capsys):
    model_gbu(bad={37})
    assert main(["--sim", "gbu-tile", "--tile", "1", "--check"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: GBU pixels (r, g, b, T, n_contrib, n_blended) differs from the "
                          "golden model in 1 of 1536 entries (first at (37, 3)"), err


@pytest.mark.parametrize("argv, message", [
    (["--tile", "99"], "gbu-tile: --tile 99: synthetic0 has tiles 0..11"),
    (["--scene", "nowhere.ply"], "scene nowhere.ply: a .ply holds no camera"),
])
def test_gbu_tile_bad_input_is_one_line(model_gbu, argv, message, capsys):
    model_gbu()
    assert main(["--sim", "gbu-tile", *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1, err
