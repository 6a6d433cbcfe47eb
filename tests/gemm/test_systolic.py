# amaranth: UnusedElaboratable=no
"""SystolicArray in amaranth.sim against golden.gemm: every output exact, under random stalls,
for both dataflows, rectangular sizes and 8/4/2-bit weights; cycle counts equal the analytic
model; interface and parameter checks.

:func:`make_workload` and :func:`expected_rows` are shared with the cocotb test.
"""

import random
import re

import pytest
import torch
from amaranth.back import rtlil
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

from boards import get_board
from golden.gemm import matmul_int
from hw.gemm.config import GemmConfig, weight_range
from hw.gemm.systolic import (OutputStationaryArray, SystolicArray, WeightStationaryArray,
                               _ws_floorplan)
from sim.pysim_stream import stream_get, stream_put


def _operand(rng, shape, lo, hi):
    """Random integers in lo..hi, a quarter of them at one of the two ends."""
    rows, cols = shape
    return [[rng.choice((lo, hi)) if rng.random() < 0.25 else rng.randint(lo, hi)
             for _ in range(cols)] for _ in range(rows)]


def make_workload(config, *, tiles, depth, seed):
    """Tiles ``(A, W)`` of lists for ``config``'s array.

    ``ws``: ``A`` is depth x rows (``depth`` = M vectors per weight tile), ``W`` rows x cols.
    ``os``: ``A`` is rows x depth (``depth`` = K slices per tile), ``W`` depth x cols.
    The first tile is all extremes (every product the most positive one), the second mixes
    the most negative activation with the most positive weight.
    """
    rng = random.Random(seed)
    w_lo, w_hi = weight_range(config.weight_bits)
    a_lo, a_hi = weight_range(config.act_bits)
    rows, cols = config.rows, config.cols
    a_shape, w_shape = (((depth, rows), (rows, cols)) if config.dataflow == "ws"
                        else ((rows, depth), (depth, cols)))
    out = []
    for t in range(tiles):
        if t == 0:
            a, w = [[a_lo] * a_shape[1]] * a_shape[0], [[w_lo] * w_shape[1]] * w_shape[0]
        elif t == 1:
            a = [[rng.choice((a_lo, a_hi)) for _ in range(a_shape[1])] for _ in range(a_shape[0])]
            w = [[w_hi] * w_shape[1]] * w_shape[0]
        else:
            a, w = _operand(rng, a_shape, a_lo, a_hi), _operand(rng, w_shape, w_lo, w_hi)
        out.append((a, w))
    return out


def expected_rows(workload):
    """The output vectors the array must produce, in order, as lists of ints."""
    rows = []
    for a, w in workload:
        rows += matmul_int(torch.tensor(a), torch.tensor(w)).tolist()
    return rows


def gemm_shape(config, workload):
    """``(M, K, N)`` of the GEMM whose array tiles ``workload`` is."""
    tiles, depth = len(workload), len(workload[0][0]) if config.dataflow == "ws" else \
        len(workload[0][1])
    if config.dataflow == "ws":
        return depth, config.rows * tiles, config.cols
    return config.rows * tiles, depth, config.cols


def simulate(config, workload, *, seed=0, in_stall=0.0, out_stall=0.0, core=SystolicArray):
    """Run the array (or another ``core`` with its ports) on ``workload``; return ``(output
    vectors, cycles)`` where ``cycles`` counts from the first input transfer to the last output
    transfer, inclusive."""
    dut = core(config=config)
    rng = random.Random(seed)
    cols = config.cols
    count = sum(len(a) for a, _ in workload)
    received = []
    inputs = [dut.w, dut.a] if config.dataflow == "ws" else [dut.i]
    transfers = {"in": [], "out": []}

    async def feed_weights(ctx):
        for _, w in workload:
            for row in w:
                await stream_put(ctx, dut.w, row, rng=rng, stall=in_stall)

    async def feed_activations(ctx):
        for a, _ in workload:
            for m, vector in enumerate(a):
                await stream_put(ctx, dut.a, {"data": vector, "swap": int(m == 0)},
                                 rng=rng, stall=in_stall)

    async def feed_slices(ctx):
        for a, w in workload:
            depth = len(w)
            for k in range(depth):
                await stream_put(ctx, dut.i, {"a": [row[k] for row in a], "w": w[k],
                                              "last": int(k == depth - 1)},
                                 rng=rng, stall=in_stall)

    async def drain(ctx):
        for _ in range(count):
            vector = await stream_get(ctx, dut.c, rng=rng, stall=out_stall)
            received.append([vector[n] for n in range(cols)])

    async def monitor(ctx):
        cycle = 0
        signals = [s for port in inputs + [dut.c] for s in (port.valid, port.ready)]
        while True:
            _, _, *values = await ctx.tick().sample(*signals)
            pairs = [values[n] & values[n + 1] for n in range(0, len(values), 2)]
            if any(pairs[:-1]):
                transfers["in"].append(cycle)
            if pairs[-1]:
                transfers["out"].append(cycle)
            cycle += 1
            assert cycle < 200 * count + 2000, f"stuck after {len(received)} of {count} outputs"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    if config.dataflow == "ws":
        sim.add_testbench(feed_weights)
        sim.add_testbench(feed_activations)
    else:
        sim.add_testbench(feed_slices)
    sim.add_testbench(drain)
    sim.add_process(monitor)
    sim.run()
    return received, transfers["out"][-1] - transfers["in"][0] + 1


def _check(config, workload, received):
    expected = expected_rows(workload)
    assert len(received) == len(expected)
    for n, (got, want) in enumerate(zip(received, expected)):
        assert got == want, f"output vector {n}: got {got}, expected {want}"


def _name(config):
    return (f"{config.rows}x{config.cols}-{config.dataflow}-w{config.weight_bits}-"
            f"{config.multiplier_kind}")


SMALL = [(1, 1), (2, 3), (3, 2), (4, 4)]
CONFIGS = ([GemmConfig(rows=r, cols=c, dataflow=d, weight_bits=b)
            for r, c in SMALL for d in ("ws", "os") for b in (8, 4, 2)]
           + [GemmConfig(rows=8, cols=8, dataflow="ws"),
              GemmConfig(rows=8, cols=8, dataflow="os", weight_bits=2),
              GemmConfig(rows=3, cols=5, dataflow="ws", weight_bits=4, multiplier="dsp"),
              GemmConfig(rows=2, cols=5, dataflow="os", weight_bits=4, acc_bits=21, max_k=64)])


@pytest.mark.parametrize("config", CONFIGS, ids=_name)
def test_exact_under_random_stalls(config):
    small = config.rows * config.cols <= 16
    depth = config.rows + 3 if small else config.rows
    workload = make_workload(config, tiles=4 if small else 3, depth=depth, seed=config.rows)
    received, _ = simulate(config, workload, seed=1, in_stall=0.3, out_stall=0.4)
    _check(config, workload, received)


CYCLE_CASES = [
    # (config, tiles, depth): depth below, at and above the tile interval.
    (GemmConfig(rows=2, cols=3), 3, 1),
    (GemmConfig(rows=2, cols=3), 3, 12),
    (GemmConfig(rows=3, cols=2, weight_bits=2), 2, 7),
    (GemmConfig(rows=3, cols=2, dataflow="os"), 3, 1),
    (GemmConfig(rows=3, cols=2, dataflow="os"), 3, 3),
    (GemmConfig(rows=2, cols=3, dataflow="os", weight_bits=4), 3, 5),
    (GemmConfig(rows=1, cols=1, dataflow="os"), 4, 1),
    (GemmConfig(rows=1, cols=1), 2, 1),
    (GemmConfig(rows=4, cols=4, dataflow="os"), 2, 6),
]


@pytest.mark.parametrize("config, tiles, depth", CYCLE_CASES,
                         ids=[f"{_name(c)}-t{t}-d{d}" for c, t, d in CYCLE_CASES])
def test_cycles_match_the_model(config, tiles, depth):
    workload = make_workload(config, tiles=tiles, depth=depth, seed=5)
    received, cycles = simulate(config, workload)
    _check(config, workload, received)
    assert cycles == config.array_cycles(*gemm_shape(config, workload))


def test_latency_and_full_rate():
    """One vector per cycle in and out once full, first output ``latency`` cycles after the
    first input; nothing more in the array than the model says."""
    config = GemmConfig(rows=3, cols=4)
    workload = make_workload(config, tiles=1, depth=20, seed=2)
    received, cycles = simulate(config, workload)
    _check(config, workload, received)
    # rows weight rows, then 20 vectors, then the latency of the last one.
    assert cycles == config.rows + 20 + config.latency
    assert config.latency == 3 + 4 + 5


def test_ws_before_first_swap_uses_zero_weights(core=WeightStationaryArray):
    config = GemmConfig(rows=2, cols=2)
    dut = core(config=config)
    got = []

    async def bench(ctx):
        await stream_put(ctx, dut.a, {"data": [5, -7], "swap": 0})
        vector = await stream_get(ctx, dut.c)
        got.append([vector[0], vector[1]])

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert got == [[0, 0]]


@pytest.mark.parametrize("config", [GemmConfig(rows=3, cols=4), GemmConfig(rows=3, cols=4,
                                                                     dataflow="os")],
                         ids=_name)
@pytest.mark.parametrize("after", [2, 9])
def test_reset_in_flight_leaves_nothing_behind(config, after):
    """A reset held for 2 cycles (as a ResetSynchronizer holds it) while results are in the
    pipeline and in the output queues, whose columns are reset by delayed copies of it: the next
    workload's results come out exact, and nothing of the first one does."""
    dut = SystolicArray(config=config)
    top = Module()
    top.domains.sync = domain = ClockDomain("sync")
    top.submodules.dut = dut
    first, second = (make_workload(config, tiles=1, depth=4, seed=s) for s in (3, 4))
    got = []

    async def put(ctx, workload):
        for a, w in workload:
            if config.dataflow == "ws":
                for row in w:
                    await stream_put(ctx, dut.w, row)
                for m, vector in enumerate(a):
                    await stream_put(ctx, dut.a, {"data": vector, "swap": int(m == 0)})
            else:
                for k in range(len(w)):
                    await stream_put(ctx, dut.i, {"a": [row[k] for row in a], "w": w[k],
                                                  "last": int(k == len(w) - 1)})

    async def bench(ctx):
        await put(ctx, first)
        await ctx.tick().repeat(after)
        ctx.set(domain.rst, 1)
        for _ in range(2):
            await ctx.tick()            # awaited plainly, a tick in reset does not raise
        ctx.set(domain.rst, 0)
        await put(ctx, second)
        for _ in expected_rows(second):
            vector = await stream_get(ctx, dut.c)
            got.append([vector[n] for n in range(config.cols)])
        for _ in range(config.latency + 8):
            assert not ctx.get(dut.c.valid)
            await ctx.tick()

    sim = Simulator(top)
    sim.add_clock(1e-8, domain="sync")
    sim.add_testbench(bench)
    sim.run()
    assert got == expected_rows(second)


def test_ports_and_validation():
    ws = SystolicArray(config=GemmConfig(rows=3, cols=5, weight_bits=4, acc_bits=24, max_k=256))
    assert set(ws.signature.members) == {"w", "a", "c"}
    assert ws.w.payload.shape().size == 5 * 4
    assert ws.a.payload.shape().size == 3 * 8 + 1
    assert ws.c.payload.shape().size == 5 * 24
    os_ = SystolicArray(config=GemmConfig(rows=3, cols=5, dataflow="os"))
    assert set(os_.signature.members) == {"i", "c"}
    assert os_.i.payload.shape().size == 3 * 8 + 5 * 8 + 1
    assert ws.latency == 3 + 5 + 5 and ws.config.rows == 3
    with pytest.raises(TypeError, match="SystolicArray.config must be a GemmConfig"):
        SystolicArray(config={"rows": 2})
    with pytest.raises(ValueError, match=r"WeightStationaryArray.config.dataflow='os'"):
        WeightStationaryArray(config=GemmConfig(dataflow="os"))
    with pytest.raises(ValueError, match=r"OutputStationaryArray.config.dataflow='ws'"):
        OutputStationaryArray(config=GemmConfig())
    with pytest.raises(TypeError):
        SystolicArray(GemmConfig())


def test_ws_floorplan_keeps_neighbours_in_neighbouring_dsp_sites():
    sites = _ws_floorplan(8, 8, (2, 36))
    assert len(set(sites.values())) == 64
    for (k, n), (row, index) in sites.items():
        # Four PE rows of a column share a block; the next column takes the next block.
        assert (row, index) == (k // 4, 4 * n + k % 4)
    assert _ws_floorplan(5, 3, (2, 36))[4, 2] == (1, 8)
    assert _ws_floorplan(12, 4, (2, 36))[8, 0] == (0, 16)
    # Too wide for a DSP row, too many PE rows, or no known sites: nextpnr places the DSPs.
    assert _ws_floorplan(2, 10, (2, 36)) is None
    assert _ws_floorplan(20, 8, (2, 36)) is None
    assert _ws_floorplan(4, 4, None) is None


def test_ws_dsps_are_placed_on_a_known_device():
    config = GemmConfig(rows=2, cols=2)
    text = rtlil.convert(WeightStationaryArray(config=config),
                         platform=get_board("ulx3s-45f").platform())
    bels = sorted(re.findall(r'attribute \\BEL "([^"]+)"', text))
    assert bels == ["X13/Y22/MULT18_0", "X14/Y22/MULT18_1", "X4/Y22/MULT18_0",
                    "X5/Y22/MULT18_1"]
    text = rtlil.convert(WeightStationaryArray(config=config),
                         platform=get_board("ulx3s-25f").platform())
    assert "MULT18X18D" in text and "BEL" not in text
