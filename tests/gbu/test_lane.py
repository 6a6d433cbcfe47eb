# amaranth: UnusedElaboratable=no
"""RowShader in amaranth.sim against golden.gbu_model: the lane's rows of a synthetic tile
(edge-case Gaussians included) fed record by record under random stalls, then read out pixel by
pixel; T, C, n_blended and n_contrib equal the model's, and the lane evaluates no fewer pairs
than the model and no more than the records hold."""

import random

import pytest
from amaranth.sim import Simulator

from golden.splat_binning import bin_splats
from golden.splat_preprocess import preprocess
from golden.splat_scenes import synthetic_scene
from hw.gbu.config import GBUConfig
from hw.gbu.lane import RowShader, lane_rows
from hw.lib.config import SQ, UQ
from sim.gbu_vectors import lane_records, tile_case
from sim.pysim_stream import stream_put


def busiest_tile(seed, width=48, height=40):
    splats = preprocess(*synthetic_scene(seed, width, height))
    tiles = bin_splats(splats)
    counts = (tiles.offsets[1:] - tiles.offsets[:-1]).tolist()
    return splats, tiles, max(range(len(counts)), key=counts.__getitem__)


CASES = [
    (GBUConfig(lanes=4), 1, 0, 0.3),
    (GBUConfig(lanes=16), 7, 1, 0.0),            # one row: every record follows its own row
    (GBUConfig(lanes=6, exp_interp=False, rounding="half_even", alpha_format=UQ(1, 12),
               t_format=UQ(1, 18), color_acc_format=UQ(4, 12), acc_format=SQ(6, 29)), 5, 1,
     0.5),
    (GBUConfig(lanes=8, dataflow="naive", rounding="trunc"), 3, 0, 0.3),
]


def run_lane(cfg, lane, bank, records, case, stall, seed=1):
    """Feed ``records`` and a marker into ``bank``, wait for the marker to drain, read the
    lane's pixels; returns (state by pixel index, issue cycles)."""
    dut = RowShader(config=cfg, lane=lane)
    rng = random.Random(seed)
    state = {}
    count = {"issue": 0}

    async def bench(ctx):
        ctx.set(dut.cols, case["cols"])
        ctx.set(dut.rows, case["rows"])
        ctx.set(dut.start, 1)
        ctx.set(dut.start_bank, bank)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for record in records:
            await stream_put(ctx, dut.i, record, rng=rng, stall=stall)
        await stream_put(ctx, dut.i, dict(records[0], marker=1))
        for _ in range(10_000):
            if ctx.get(dut.drained) == 1 << bank:
                break
            await ctx.tick()
        else:
            raise AssertionError("the marker never came out")
        assert not ctx.get(dut.busy)
        ctx.set(dut.rd_bank, bank)
        for slot, row in enumerate(lane_rows(cfg, lane)):
            for x in range(16):
                ctx.set(dut.rd_slot, slot)
                ctx.set(dut.rd_x, x)
                await ctx.tick().repeat(dut.rd_latency)
                rd = ctx.get(dut.rd)
                state[row * 16 + x] = [*(int(c) for c in rd.color), rd.t, rd.n_contrib,
                                       rd.n_blended]

    async def counter(ctx):
        async for _clk, _rst, issuing in ctx.tick().sample(dut.issuing):
            count["issue"] += issuing

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.add_testbench(counter, background=True)
    sim.run()
    return state, count["issue"]


def check_lane(cfg, lane, bank, stall, splats, tiles, t):
    """Run ``lane`` on tile ``t``: every pixel's state equals the model's."""
    case = tile_case(cfg, splats, tiles, t)
    gx = tiles.grid[0]
    origin = ((t % gx) * 16, (t // gx) * 16)
    records = lane_records(cfg, splats, tiles.tile(t), origin, lane, bank)
    state, issued = run_lane(cfg, lane, bank, records, case, stall)
    for p, got in state.items():
        assert got == case["pixels"][p], f"pixel {p} (row {p // 16}, x {p % 16})"
    # At least the model's pairs (its rows stop being set up as soon as they stop), at most
    # every pixel of every record (the lane ends records of rows that have stopped).
    model = sum(case["row_evals"][row] for row in lane_rows(cfg, lane))
    if cfg.dataflow == "irss":
        most = sum(max(0, r["hi"] - r["lo"] + 1) for r in records)
    else:
        most = 16 * len(records)
    assert model <= issued <= most


@pytest.mark.parametrize("cfg, lane, bank, stall", CASES,
                         ids=[f"{c.lanes}{c.dataflow}-{lane}" for c, lane, _, _ in CASES])
def test_lane_matches_model(cfg, lane, bank, stall):
    check_lane(cfg, lane, bank, stall, *busiest_tile(seed=2))


@pytest.mark.parametrize("stall", [0.0, 0.3])
def test_lane_same_pixel_every_few_cycles(stall):
    """A stack of dots: one lane per row, each record a few pixels wide, so a pixel is
    evaluated again HAZARD_SPACING cycles after its first blend and after its stop, while that
    evaluation's state write lands."""
    cfg = GBUConfig(lanes=16)
    splats = preprocess(*synthetic_scene(5, 32, 32, counts={"dots": 8}))
    tiles = bin_splats(splats)
    gx = tiles.grid[0]
    x, y = (int(c) // 16 for c in splats.means2d[0])
    t = y * gx + x                                  # the tile holding the dots' centre
    origin = ((t % gx) * 16, (t // gx) * 16)
    lane = max(range(cfg.lanes), key=lambda n: sum(  # the lane of the centre row
        r["hi"] - r["lo"] + 1 for r in lane_records(cfg, splats, tiles.tile(t), origin, n)))
    check_lane(cfg, lane, 0, stall, splats, tiles, t)
