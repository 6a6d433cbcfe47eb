"""TensorEngine on its emitted Verilog, in cocotb, against golden.gemm, on each array kind
(ws and os systolic, dot-product): several GEMMs back to back per config (M/K/N not multiples
of the array, extremes first, ReLU on every other one), every int8 output word exact with and
without random stalls on every stream, and the stall-free cycles of the first GEMM (started on
an idle engine; later ones find operands already queued) equal to GemmConfig.engine_cycles."""

import math

import pytest
import torch

from hw.gemm.engine import TensorEngine
from sim.packing import pack_all
from sim.runner import run
from sw.gemm import engine_streams

from .test_engine import _small, expected, make_jobs, name


def _output_vectors(job):
    """Expected ``c`` vectors: n-tile outer, m inner; lanes past N requantize a zero sum."""
    cols = job.config.cols
    m, _, n = job.shape
    nt = math.ceil(n / cols)
    c = torch.nn.functional.pad(expected(job), (0, nt * cols - n))
    return [c[i, t * cols:(t + 1) * cols].tolist() for t in range(nt) for i in range(m)]


def engine_vectors(engine, jobs):
    """Packed stream words, and the first GEMM's cycle span, for :mod:`sim.tb.packed_streams`."""
    inputs = {port: [] for port in ("cmd", "q", "a", "w")}
    outputs = []
    for job in jobs:
        for port, payloads in engine_streams(job).items():
            inputs[port] += pack_all(getattr(engine, port).payload.shape(), payloads)
        outputs += _output_vectors(job)
    first = jobs[0]
    span = ["cmd", 0, "c", len(_output_vectors(first)) - 1,
            first.config.engine_cycles(*first.shape)]
    return {"inputs": inputs, "outputs": {"c": pack_all(engine.c.payload.shape(), outputs)},
            "spans": [span]}


# One config per array kind: the formats, multiplier kinds and roundings spread over them.
CASES = [
    _small(rows=3, cols=5, weight_bits=2, multiplier="lut", rounding="half_even"),
    _small(rows=4, cols=3, array="dot-product", acc_bits=32, weight_bits=4),
    _small(rows=4, cols=3, dataflow="os", acc_bits=32, multiplier="dsp"),
]
SHAPES = [(10, 13, 11), (1, 1, 1), (5, 7, 5), (2, 9, 3)]


@pytest.mark.parametrize("config", CASES, ids=name)
def test_tensor_engine_verilog(config):
    jobs = make_jobs(config, SHAPES, seed=config.rows * 11 + config.cols)
    engine = TensorEngine(config=config)
    assert run(engine, name="tensor_engine", testbench="sim.tb.packed_streams", config=config,
               vectors=engine_vectors(engine, jobs), design_name="tensor-engine", seed=5) == 2
