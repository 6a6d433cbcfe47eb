"""SystolicArray on its emitted Verilog, in cocotb, against golden.gemm: a representative set
of configs (int8 weight-stationary with DSP multipliers, a rectangular output-stationary W2A8
with LUT multipliers, 8x8 W4A8), each with many vectors per build, with and without stalls."""

import pytest

from hw.gemm.config import GemmConfig
from hw.gemm.systolic import SystolicArray
from sim.runner import run

from .test_systolic import expected_rows, gemm_shape, make_workload


CASES = [
    (GemmConfig(rows=4, cols=4, dataflow="ws"), 5, 24),
    (GemmConfig(rows=3, cols=5, dataflow="os", weight_bits=2), 6, 7),
    (GemmConfig(rows=8, cols=8, dataflow="ws", weight_bits=4), 3, 32),
]


@pytest.mark.parametrize("config, tiles, depth", CASES, ids=lambda v: (
    f"{v.rows}x{v.cols}-{v.dataflow}-w{v.weight_bits}" if isinstance(v, GemmConfig) else None))
def test_systolic_array_verilog(config, tiles, depth):
    workload = make_workload(config, tiles=tiles, depth=depth, seed=11)
    vectors = {
        "tiles": [[a, w] for a, w in workload],
        "expected": expected_rows(workload),
        "model_cycles": config.array_cycles(*gemm_shape(config, workload)),
    }
    assert run(SystolicArray(config=config), name="systolic_array",
               testbench="sim.tb.systolic_array", config=config, vectors=vectors,
               design_name="systolic-array", seed=3) == 2
