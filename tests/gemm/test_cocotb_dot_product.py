"""DotProductEngine on its emitted Verilog, in cocotb, against golden.gemm: int8 8x8 with DSP
multipliers, a rectangular W2A8 with LUT multipliers and a 1-row W4A8, each with many vectors
per build (the first two tiles all extremes), with and without stalls, and the stall-free cycle
count equal to the engine's model.

The engine has the systolic array's ports and protocol, so the array's testbench
(:mod:`sim.tb.systolic_array`) and workloads (:mod:`tests.gemm.test_systolic`) run unchanged.
"""

import pytest

from hw.gemm.config import GemmConfig
from hw.gemm.dot_product import DotProductEngine
from sim.runner import run

from .test_systolic import expected_rows, gemm_shape, make_workload


CASES = [
    (GemmConfig(rows=8, cols=8), 4, 24),
    (GemmConfig(rows=3, cols=5, weight_bits=2, multiplier="lut"), 6, 7),
    (GemmConfig(rows=1, cols=8, weight_bits=4), 5, 9),
]


@pytest.mark.parametrize("config, tiles, depth", CASES, ids=lambda v: (
    f"{v.rows}x{v.cols}-w{v.weight_bits}-{v.multiplier_kind}"
    if isinstance(v, GemmConfig) else None))
def test_dot_product_verilog(config, tiles, depth):
    engine = DotProductEngine(config=config)
    workload = make_workload(config, tiles=tiles, depth=depth, seed=13)
    vectors = {
        "tiles": [[a, w] for a, w in workload],
        "expected": expected_rows(workload),
        "model_cycles": engine.array_cycles(*gemm_shape(config, workload)),
    }
    assert run(engine, name="dot_product", testbench="sim.tb.systolic_array", config=config,
               vectors=vectors, design_name="dot-product", seed=3) == 2
