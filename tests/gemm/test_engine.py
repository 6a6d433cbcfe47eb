# amaranth: UnusedElaboratable=no
"""TensorEngine in amaranth.sim against golden.gemm: every int8 output exact over randomized
configs (square and rectangular, every weight format, both roundings, ReLU), M/K/N not
multiples of the array, extreme values, random stalls on every stream; stall-free cycle counts
equal GemmConfig.engine_cycles; the requantizer alone over extreme values.

:func:`make_jobs` and :func:`expected` are shared with the cocotb and sw tests.
"""

import random

import pytest
import torch
from amaranth.sim import Simulator

from golden.gemm import matmul_int, requantize
from hw.gemm.config import GemmConfig, weight_range
from hw.gemm.engine import TensorEngine
from hw.gemm.requant import ChannelRequantizer
from sim.pysim_stream import stream_get, stream_put
from sw.gemm import GemmJob, run_engine


def _operand(gen, shape, bits):
    lo, hi = weight_range(bits)
    x = torch.randint(lo, hi + 1, shape, generator=gen)
    ends = torch.rand(shape, generator=gen) < 0.25
    return torch.where(ends, torch.where(torch.rand(shape, generator=gen) < 0.5, lo, hi), x)


def make_jobs(config, shapes, *, seed):
    """Random jobs of the given (M, K, N); the first is all extremes (most positive sums)."""
    gen = torch.Generator().manual_seed(seed)
    jobs = []
    for n_job, (m, k, n) in enumerate(shapes):
        if n_job == 0:
            a = torch.full((m, k), -128)
            w = torch.full((k, n), weight_range(config.weight_bits)[0])
        else:
            a, w = _operand(gen, (m, k), 8), _operand(gen, (k, n), config.weight_bits)
        s_lo, s_hi = weight_range(config.scale_bits)
        multiplier = torch.randint(s_lo, s_hi + 1, (n,), generator=gen)
        shift = torch.randint(0, 63, (n,), generator=gen)
        # Mostly shifts that land the results near the int8 range, some anywhere in 0..62.
        useful = torch.randint(config.scale_bits + 4, config.scale_bits + 14, (n,), generator=gen)
        shift = torch.where(torch.rand(n, generator=gen) < 0.8, useful, shift)
        jobs.append(GemmJob(config, a, w, multiplier, shift, relu=bool(n_job % 2)))
    return jobs


def expected(job):
    return requantize(matmul_int(job.a, job.w), job.multiplier, job.shift,
                      rounding=job.config.rounding, relu=job.relu)


def _small(**params):
    return GemmConfig(max_k=64, acc_bits=24, a_buffer_depth=128, w_buffer_depth=8,
                      acc_buffer_depth=32, **params)


CONFIGS = [
    _small(rows=1, cols=1),
    _small(rows=2, cols=3, rounding="half_even"),
    _small(rows=3, cols=2, weight_bits=4, scale_bits=8),
    _small(rows=4, cols=4, weight_bits=2),
    _small(rows=1, cols=4, weight_bits=4, multiplier="dsp", rounding="half_even"),
]
SHAPES = [(5, 7, 5), (1, 1, 1), (3, 9, 2), (9, 2, 7)]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: (
    f"{c.rows}x{c.cols}-w{c.weight_bits}-{c.rounding}"))
def test_exact_under_random_stalls(config):
    jobs = make_jobs(config, SHAPES, seed=config.rows * 7 + config.cols)
    results, _, _ = run_engine(jobs, seed=3, stall=0.3)
    for n, (job, got) in enumerate(zip(jobs, results)):
        assert torch.equal(got, expected(job)), f"job {n} {job.shape}"


@pytest.mark.parametrize("config, shape", [
    (_small(rows=2, cols=3), (1, 1, 1)),
    (_small(rows=2, cols=3), (12, 5, 7)),
    (_small(rows=3, cols=2, weight_bits=2), (4, 7, 3)),
    (_small(rows=4, cols=4), (16, 16, 16)),
], ids=str)
def test_cycles_match_the_model(config, shape):
    job, = make_jobs(config, [shape], seed=1)
    (got,), (cycles,), _ = run_engine([job])
    assert torch.equal(got, expected(job))
    assert cycles == config.engine_cycles(*shape)


def test_requantizer_extremes_both_roundings():
    for rounding in ("half_away", "half_even"):
        config = GemmConfig(cols=4, rounding=rounding)
        dut = ChannelRequantizer(config=config)
        rng = random.Random(rounding)
        lo, hi = weight_range(32)
        cases = [([lo, hi, -1, 0], [-32768, 32767, -32768, 1], [0, 62, 47, 0], 0),
                 ([lo, hi, 3, -3], [-32768, -32768, 1, 1], [47, 46, 1, 1], 1),
                 ([5, -5, 6, -6], [1, 1, 1, 1], [1, 1, 2, 2], 0)]
        for _ in range(40):
            cases.append(([rng.randint(lo, hi) for _ in range(4)],
                          [rng.randint(-32768, 32767) for _ in range(4)],
                          [rng.randint(0, 62) for _ in range(4)], rng.randint(0, 1)))
        got = []

        async def bench(ctx):
            for acc, mult, shift, relu in cases:
                await stream_put(ctx, dut.i, {"acc": acc, "multiplier": mult, "shift": shift,
                                              "relu": relu})

        async def drain(ctx):
            for _ in cases:
                vector = await stream_get(ctx, dut.o, rng=rng, stall=0.3)
                got.append([vector[n] for n in range(4)])

        sim = Simulator(dut)
        sim.add_clock(1e-8)
        sim.add_testbench(bench)
        sim.add_testbench(drain)
        sim.run()
        for (acc, mult, shift, relu), row in zip(cases, got):
            want = requantize(torch.tensor(acc), torch.tensor(mult), torch.tensor(shift),
                              rounding=rounding, relu=bool(relu))
            assert row == want.tolist(), (acc, mult, shift, relu, rounding)


def test_validation():
    with pytest.raises(ValueError, match=r"TensorEngine.config.dataflow='os' is not supported"):
        TensorEngine(config=GemmConfig(dataflow="os"))
    with pytest.raises(TypeError, match="TensorEngine.config must be a GemmConfig"):
        TensorEngine(config=None)
    with pytest.raises(ValueError, match="engine is weight-stationary"):
        GemmConfig(dataflow="os").engine_cycles(4, 4, 4)
    with pytest.raises(ValueError, match="GemmConfig.rounding='up' is not valid"):
        GemmConfig(rounding="up")
