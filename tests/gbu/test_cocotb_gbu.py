"""GaussianBlendingUnit on its emitted Verilog, in cocotb, against golden.gbu_model, tile by tile:
both dataflows, lanes 2 to 8, synthetic tiles holding the edge cases (Gaussians outside the tile,
near-singular conics, opacities at the thresholds, stacks that stop pixels and rows, partial
tiles at the image border) and, when the shared data is present, garden tiles; with and without
random stalls. The stall-free run's cycles are compared with the model's (lane work or row setups,
whichever is busier)."""

import json

import pytest

from golden.splat_binning import bin_splats
from golden.splat_preprocess import preprocess
from golden.splat_scenes import GARDEN_NPZ, garden_scene, synthetic_scene
from hw.gbu.config import GBUConfig
from hw.gbu.core import GaussianBlendingUnit
from hw.lib.config import SQ, UQ
from sim.gbu_vectors import core_vectors, tile_case
from sim.runner import run

from . import make_splats


def synthetic_tiles(cfg, seed=2):
    """The busiest tile, a partial tile at the border and an empty-ish one of a synthetic
    scene whose edge-case families all land in view."""
    splats = preprocess(*synthetic_scene(seed, 40, 24))
    tiles = bin_splats(splats)
    counts = (tiles.offsets[1:] - tiles.offsets[:-1]).tolist()
    busiest = max(range(len(counts)), key=counts.__getitem__)
    picks = [busiest, len(counts) - 1, min(range(len(counts)), key=counts.__getitem__)]
    return [tile_case(cfg, splats, tiles, t) for t in dict.fromkeys(picks)]


def edge_tile(cfg):
    """A hand-made tile: degenerate conics (a = 0, a < 0), opacities at and just below 1/255
    on a pixel centre, a Gaussian whose mean lies outside the tile, and a stack of nearly
    opaque wide Gaussians that stops every pixel, so that the end of the list is dropped."""
    n = 14
    splats = make_splats(
        [[4.0, 4.0], [9.0, 3.0], [12.0, 12.0], [12.0, 13.0], [-6.0, 8.0]] + [[7.5, 7.5]] * n,
        [[0.0, 0.1, 0.5], [-0.2, 0.0, 0.4], [0.5, 0.0, 0.5], [0.5, 0.0, 0.5], [0.02, 0.0, 0.02]]
        + [[0.002, 0.0, 0.002]] * n,
        [0.9, 0.9, 1 / 255, 0.999 / 255, 0.8] + [0.99] * n,
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0], [0.3, 0.6, 0.9]]
        + [[0.5, 0.25, 1.0]] * n)
    return tile_case(cfg, splats, bin_splats(splats), 0)


@pytest.fixture(scope="module")
def garden():
    if not GARDEN_NPZ.is_file():
        return None
    scene, cameras = garden_scene()
    splats = preprocess(scene, cameras[0])
    return splats, bin_splats(splats)


def garden_tiles(cfg, garden, count=2, max_list=120):
    """``count`` garden tiles with the longest lists up to ``max_list`` Gaussians."""
    splats, tiles = garden
    counts = (tiles.offsets[1:] - tiles.offsets[:-1]).tolist()
    picks = sorted((t for t in range(len(counts)) if counts[t] <= max_list),
                   key=counts.__getitem__)[-count:]
    return [tile_case(cfg, splats, tiles, t) for t in picks]


#: One Verilator build each (the row setup is a deep pipeline: an IRSS build costs minutes of
#: CPU per row setup), so few lanes here; ``lanes=8`` is measured on garden tiles by the benchmark.
CONFIGS = {
    "naive-4": GBUConfig(lanes=4, dataflow="naive", bg_g=1 << 13, rounding="half_even"),
    "irss-1": GBUConfig(lanes=1, bg_r=1 << 12, bg_b=(1 << 14) - 1, exp_interp=False,
                        alpha_format=UQ(1, 12), t_format=UQ(1, 18), color_acc_format=UQ(4, 12),
                        acc_format=SQ(6, 29), rounding="trunc"),
    "irss-2": GBUConfig(lanes=2, bg_r=1 << 12, bg_b=(1 << 14) - 1),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_gbu_core_verilog(name, garden, tmp_path):
    cfg = CONFIGS[name]
    cases = [edge_tile(cfg), *synthetic_tiles(cfg)]
    if garden is not None and name == "irss-2":
        cases += garden_tiles(cfg, garden)
    cycles_path = tmp_path / "cycles.json"
    assert run(GaussianBlendingUnit(config=cfg), name="gbu_core", testbench="sim.tb.gbu_core",
               config=cfg, vectors=core_vectors(cfg, cases), design_name="gbu", seed=7,
               extra_env={"GBU_CYCLES_JSON": str(cycles_path)}) == 2
    measured = json.loads(cycles_path.read_text())
    model = [c["cycles"] for c in cases]
    print(f"\n{name}: core cycles per tile {measured['per_tile']} (all tiles "
          f"{measured['total']}), model cycles {model} (sum {sum(model)})")
    # The model's cycles are the busier of the lanes and the row setups. The core evaluates
    # and sets up at least the model's pairs (more where a row stops later than in the
    # model), and the row setup's latency, the drain and the read-out come on top.
    assert all(want <= got for got, want in zip(measured["per_tile"], model))
