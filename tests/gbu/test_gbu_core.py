# amaranth: UnusedElaboratable=no
"""GaussianBlendingUnit in amaranth.sim on small hand-made tiles against golden.gbu_model: an
empty list, a partial tile at the image corner, and an opaque stack that stops every row so
that the rest of the list is taken and dropped; and the ``gbu`` design's registration."""

import random

import pytest
from amaranth.sim import Simulator

from golden.splat_binning import bin_splats
from golden.splat_preprocess import preprocess
from golden.splat_scenes import synthetic_scene
from hw.gbu.config import GBUConfig
from hw.gbu.core import GaussianBlendingUnit
from hw.gbu.designs import peak_throughput
from hw.registry import get_design
from sim.gbu_vectors import tile_case
from sim.pysim_stream import stream_get, stream_put

from . import make_splats


def run_core(cfg, cases, *, stall=0.3, seed=0):
    """Output pixels of every case, as ``[r, g, b, T, n_contrib, n_blended]``, and the cycles
    until the last one."""
    dut = GaussianBlendingUnit(config=cfg)
    rng = random.Random(seed)
    got = []
    cycles = [0, 0]                             # now, at the last pixel

    async def clock(ctx):
        while True:
            await ctx.tick()
            cycles[0] += 1

    async def producer(ctx):
        for case in cases:
            await stream_put(ctx, dut.tile, {k: case[k] for k in ("count", "cols", "rows")},
                             rng=rng, stall=stall)
            for splat in case["splats"]:
                await stream_put(ctx, dut.splats, splat, rng=rng, stall=stall)

    async def consumer(ctx):
        for _ in range(256 * len(cases)):
            p = await stream_get(ctx, dut.pixels, rng=rng, stall=stall)
            got.append([*(int(c) for c in p.color), p.t, p.n_contrib, p.n_blended])
        cycles[1] = cycles[0]

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(clock, background=True)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    return got, cycles[1]


def check(got, cases):
    for n, case in enumerate(cases):
        for p, want in enumerate(case["pixels"]):
            assert got[256 * n + p] == want, f"tile {n} pixel {p}"


def test_empty_partial_and_dropped():
    cfg = GBUConfig(lanes=4, dataflow="naive", bg_r=3000, bg_b=1 << 14)
    # Corner tile of a 21 x 19 image: 5 columns and 3 rows inside.
    corner = make_splats([[18.0, 17.0], [30.0, 30.0]], [[0.3, 0.1, 0.2], [0.5, 0.0, 0.5]],
                         [0.9, 0.6], [[1.0, 0.2, 0.0], [0.0, 1.0, 0.5]], width=21, height=19)
    # Wide, nearly opaque Gaussians stop every pixel after three; the rest are dropped.
    n = 12
    stack = make_splats([[7.5, 7.5]] * n, [[0.001, 0.0, 0.001]] * n, [0.99] * n,
                        [[0.5, 0.25, 1.0]] * n)
    cases = [tile_case(cfg, corner, bin_splats(corner), 3),
             tile_case(cfg, stack, bin_splats(stack), 0)]
    # No Gaussian: T = 1 and C = bg, color_format (f = 14) to color_acc_format (f = 20).
    empty = dict(cases[1], count=0, splats=[],
                 pixels=[[3000 << 6, 0, (1 << 14) << 6, 1 << 24, 0, 0]] * 256)
    cases.append(empty)
    assert cases[0]["cols"] == 5 and cases[0]["rows"] == 3
    check(run_core(cfg, cases)[0], cases)


def test_design_registered():
    design = get_design("gbu")
    assert design.config_cls is GBUConfig
    cfg = GBUConfig(lanes=8)
    assert isinstance(design.make_core(cfg), GaussianBlendingUnit)
    assert peak_throughput(cfg, 100e6) == {"evaluations/s": 8 * 100e6}


def test_core_checks_its_config():
    with pytest.raises(TypeError, match="GaussianBlendingUnit.config must be a GBUConfig"):
        GaussianBlendingUnit(config=None)


def test_irss_shared_row_setup():
    """IRSS with two row setups for three lanes (lanes 0 and 2 share one, unequal groups;
    the cocotb test has all lanes on one): every pixel of a synthetic scene's busiest tile
    and of an opaque stack, with short record queues under stalls."""
    cfg = GBUConfig(lanes=3, row_setups=2, record_fifo_depth=4, bg_g=1 << 13)
    splats = preprocess(*synthetic_scene(2, 40, 24))
    tiles = bin_splats(splats)
    counts = (tiles.offsets[1:] - tiles.offsets[:-1]).tolist()
    n = 8
    stack = make_splats([[7.5, 7.5]] * n, [[0.001, 0.0, 0.001]] * n, [0.99] * n,
                        [[0.5, 0.25, 1.0]] * n)
    cases = [tile_case(cfg, splats, tiles, max(range(len(counts)), key=counts.__getitem__)),
             tile_case(cfg, stack, bin_splats(stack), 0)]
    check(run_core(cfg, cases, stall=0.2, seed=3)[0], cases)
