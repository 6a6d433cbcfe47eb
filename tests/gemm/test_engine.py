# amaranth: UnusedElaboratable=no
"""TensorEngine in amaranth.sim against golden.gemm: every int8 output exact over randomized
configs (every array kind: ws and os systolic, dot-product; square and rectangular, every
weight format, both roundings, ReLU), M/K/N not multiples of the array (M of 1 to 3, whose
partial sums are forwarded rather than read back), extreme values, random stalls on every
stream; stall-free cycle counts equal GemmConfig.engine_cycles; the requantizer alone over
extreme values.

:func:`make_jobs` and :func:`expected` are shared with the cocotb and sw tests.
"""

import random

import pytest
import torch
from amaranth.sim import Simulator

from golden.gemm import matmul_int, requantize
from hw.gemm.config import GemmConfig, weight_range
from hw.gemm.dot_product import DotProductEngine
from hw.gemm.engine import TensorEngine
from hw.gemm.requant import ChannelRequantizer
from hw.gemm.systolic import OutputStationaryArray, WeightStationaryArray
from sim.pysim_stream import stream_put
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
    params = {"max_k": 64, "acc_bits": 24, "a_buffer_depth": 128, "acc_buffer_depth": 32,
              "w_buffer_depth": 64 if params.get("dataflow") == "os" else 8, **params}
    return GemmConfig(**params)


def kind(config):
    """``ws``, ``os`` or ``dp``: the array of the engine."""
    return "dp" if config.array == "dot-product" else config.dataflow


def name(config):
    return (f"{kind(config)}-{config.rows}x{config.cols}-w{config.weight_bits}-"
            f"a{config.acc_bits}-{config.rounding}")


CONFIGS = [
    _small(rows=1, cols=1),
    _small(rows=2, cols=3, rounding="half_even"),
    _small(rows=3, cols=2, weight_bits=4, scale_bits=8),
    _small(rows=4, cols=4, weight_bits=2),
    _small(rows=1, cols=4, weight_bits=4, multiplier="dsp", rounding="half_even"),
    # Accumulators as wide as the defaults: the requantizer's DSP and LUT parts both in use.
    _small(rows=2, cols=2, acc_bits=40, scale_bits=18),
    _small(rows=1, cols=1, array="dot-product"),
    _small(rows=3, cols=2, array="dot-product", weight_bits=2, rounding="half_even"),
    _small(rows=4, cols=3, array="dot-product", acc_bits=32),
    _small(rows=1, cols=1, dataflow="os"),
    _small(rows=2, cols=3, dataflow="os", weight_bits=4, rounding="half_even"),
    _small(rows=3, cols=2, dataflow="os", weight_bits=2, multiplier="dsp", acc_bits=32),
]
SHAPES = [(5, 7, 5), (1, 1, 1), (3, 9, 2), (9, 2, 7), (2, 5, 3)]


@pytest.mark.parametrize("config", CONFIGS, ids=name)
def test_exact_under_random_stalls(config):
    jobs = make_jobs(config, SHAPES, seed=config.rows * 7 + config.cols)
    results, _, _ = run_engine(jobs, seed=3, stall=0.3)
    for n, (job, got) in enumerate(zip(jobs, results)):
        assert torch.equal(got, expected(job)), f"job {n} {job.shape}"


CYCLE_CASES = [
    (_small(rows=2, cols=3), (1, 1, 1)),
    (_small(rows=2, cols=3), (12, 5, 7)),
    (_small(rows=3, cols=2, weight_bits=2), (4, 7, 3)),
    (_small(rows=4, cols=4), (16, 16, 16)),
    (_small(rows=1, cols=2), (2, 1, 3)),
    (_small(rows=3, cols=3, array="dot-product"), (12, 3, 7)),
    (_small(rows=2, cols=2, array="dot-product"), (9, 2, 5)),
    (_small(rows=4, cols=2, array="dot-product"), (1, 9, 3)),
    (_small(rows=3, cols=2, dataflow="os"), (5, 1, 4)),
    (_small(rows=2, cols=2, dataflow="os"), (9, 2, 5)),
    (_small(rows=4, cols=3, dataflow="os"), (10, 11, 7)),
]


@pytest.mark.parametrize("config, shape", CYCLE_CASES,
                         ids=[f"{name(c)}-{s}" for c, s in CYCLE_CASES])
def test_cycles_match_the_model(config, shape):
    job, = make_jobs(config, [shape], seed=1)
    (got,), (cycles,), _ = run_engine([job])
    assert torch.equal(got, expected(job))
    assert cycles == config.engine_cycles(*shape)


@pytest.mark.parametrize("acc_bits, value_bits, count", [(32, 32, 40), (18, 18, 40),
                                                          (64, 47, 12)])
def test_requantizer_extremes_both_roundings(acc_bits, value_bits, count):
    """Against golden.gemm.requantize, inputs with random gaps; every result in the cycle
    the latency says. (The golden model needs products within int64: 64-bit accumulators are
    driven with 47-bit values.)"""
    for rounding in ("half_away", "half_even"):
        config = GemmConfig(cols=4, rounding=rounding, acc_bits=acc_bits, max_k=1)
        dut = ChannelRequantizer(config=config)
        rng = random.Random(rounding)
        lo, hi = weight_range(value_bits)
        cases = [([lo, hi, -1, 0], [-32768, 32767, -32768, 1], [0, 62, 47, 0], 0),
                 ([lo, hi, 3, -3], [-32768, -32768, 1, 1], [47, 46, 1, 1], 1),
                 ([5, -5, 6, -6], [1, 1, 1, 1], [1, 1, 2, 2], 0)]
        for _ in range(count):
            cases.append(([rng.randint(lo, hi) for _ in range(4)],
                          [rng.randint(-32768, 32767) for _ in range(4)],
                          [rng.randint(0, 62) for _ in range(4)], rng.randint(0, 1)))
        got, sent, offered = [], [], []

        async def bench(ctx):
            for acc, mult, shift, relu in cases:
                await stream_put(ctx, dut.i, {"acc": acc, "multiplier": mult, "shift": shift,
                                              "relu": relu}, rng=rng, stall=0.3)

        async def watch(ctx):
            cycle = 0
            async for _, _, i_valid, o_valid, vector in ctx.tick().sample(
                    dut.i.valid, dut.o.valid, dut.o.payload):
                if i_valid:
                    sent.append(cycle)
                if o_valid:
                    offered.append(cycle)
                    got.append([vector[n] for n in range(4)])
                cycle += 1

        sim = Simulator(dut)
        sim.add_clock(1e-8)
        sim.add_testbench(bench)
        sim.add_process(watch)
        sim.run_until(1e-8 * (40 * len(cases) + 100))
        assert offered == [cycle + dut.latency for cycle in sent]
        for (acc, mult, shift, relu), row in zip(cases, got):
            want = requantize(torch.tensor(acc), torch.tensor(mult), torch.tensor(shift),
                              rounding=rounding, relu=bool(relu))
            assert row == want.tolist(), (acc, mult, shift, relu, rounding)


def test_validation():
    with pytest.raises(TypeError, match="TensorEngine.config must be a GemmConfig"):
        TensorEngine(config=None)
    with pytest.raises(TypeError, match="ChannelRequantizer.config must be a GemmConfig"):
        ChannelRequantizer(config={"cols": 4})
    with pytest.raises(ValueError, match="GemmConfig.rounding='up' is not valid"):
        GemmConfig(rounding="up")
    with pytest.raises(ValueError, match=r"GemmConfig.dataflow='os' is not valid with "
                                         r"array='dot-product'"):
        GemmConfig(dataflow="os", array="dot-product")


def test_array_of_each_kind():
    arrays = {"ws": WeightStationaryArray, "os": OutputStationaryArray, "dp": DotProductEngine}
    for config in (GemmConfig(), GemmConfig(dataflow="os"), GemmConfig(array="dot-product")):
        engine = TensorEngine(config=config)
        assert engine._array_cls is arrays[kind(config)]
        assert engine.config is config
