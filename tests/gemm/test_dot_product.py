# amaranth: UnusedElaboratable=no
"""DotProductEngine in amaranth.sim against golden.gemm: every output exact under random stalls
for 1x1 up to 16x4 and rectangular sizes, every weight format, DSP and LUT multipliers, extreme
values; stall-free cycle counts equal the engine's model (a weight-tile change costs no bubble);
the latency is log2-shaped; it runs as the array of the TensorEngine; interface checks.

The workloads, golden vectors and the stream driver are the systolic array's
(:mod:`tests.gemm.test_systolic`), since the engine has the array's ports and protocol.
"""


import pytest
import torch

from hw.gemm import engine as engine_module
from hw.gemm.config import GemmConfig
from hw.gemm.dot_product import DotProductEngine
from hw.gemm.systolic import WeightStationaryArray
from sw.gemm import run_engine

from . import test_systolic
from .test_engine import expected as expected_engine
from .test_engine import make_jobs
from .test_systolic import expected_rows, gemm_shape, make_workload


def simulate(config, workload, **kwargs):
    """:func:`tests.gemm.test_systolic.simulate` with the engine in place of the array."""
    return test_systolic.simulate(config, workload, core=DotProductEngine, **kwargs)


def _name(config):
    return f"{config.rows}x{config.cols}-w{config.weight_bits}-{config.multiplier_kind}"


FORMATS = [(8, "dsp"), (4, "dsp"), (4, "lut"), (2, "dsp"), (2, "lut")]
SIZES = [(1, 1), (1, 8), (3, 5), (8, 8), (16, 4)]
CONFIGS = [GemmConfig(rows=r, cols=c, weight_bits=b, multiplier=k)
           for r, c in SIZES for b, k in FORMATS]


@pytest.mark.parametrize("config", CONFIGS, ids=_name)
def test_exact_under_random_stalls(config):
    # Tile 0 is all most-negative operands (every product the most positive one), tile 1 the
    # most negative activation or 127 against the most positive weight, the others random with
    # a quarter of the values at the ends.
    depth = config.rows + 3
    workload = make_workload(config, tiles=3 if config.rows * config.cols > 16 else 4,
                             depth=depth, seed=config.rows + config.weight_bits)
    received, _ = simulate(config, workload, seed=1, in_stall=0.3, out_stall=0.4)
    assert received == expected_rows(workload)


def test_accumulator_wraps_like_the_array():
    """With max_k below rows, acc_bits may be too narrow for a tile's sums: outputs are the
    exact sums modulo 2**acc_bits, as the systolic array's are."""
    config = GemmConfig(rows=5, cols=3, weight_bits=4, max_k=1, acc_bits=12)
    assert config.psum_bits == 12
    workload = make_workload(config, tiles=4, depth=6, seed=9)
    received, _ = simulate(config, workload, seed=2, in_stall=0.2, out_stall=0.3)
    half = 1 << (config.acc_bits - 1)
    wrapped = [[(v + half) % (2 * half) - half for v in row] for row in expected_rows(workload)]
    assert wrapped != expected_rows(workload)
    assert received == wrapped


CYCLE_CASES = [
    # (config, tiles, depth): depth below, at and above the tile interval (rows + 1).
    (GemmConfig(rows=3, cols=4), 3, 1),
    (GemmConfig(rows=3, cols=4), 3, 4),
    (GemmConfig(rows=3, cols=4, weight_bits=2), 3, 9),
    (GemmConfig(rows=8, cols=2, weight_bits=4, multiplier="lut"), 3, 9),
    (GemmConfig(rows=1, cols=1), 4, 1),
    (GemmConfig(rows=1, cols=3), 3, 2),
]


@pytest.mark.parametrize("config, tiles, depth", CYCLE_CASES,
                         ids=[f"{_name(c)}-t{t}-d{d}" for c, t, d in CYCLE_CASES])
def test_cycles_match_the_model(config, tiles, depth):
    engine = DotProductEngine(config=config)
    workload = make_workload(config, tiles=tiles, depth=depth, seed=5)
    received, cycles = simulate(config, workload)
    assert received == expected_rows(workload)
    assert cycles == engine.array_cycles(*gemm_shape(config, workload))
    if depth >= config.rows + 1:
        # No bubble at tile changes: one vector per cycle from the first to the last.
        assert cycles == config.rows + tiles * depth + engine.latency


def test_latency_is_log2_shaped():
    latencies = {(r, c): DotProductEngine(config=GemmConfig(rows=r, cols=c)).latency
                 for r, c in [(1, 1), (1, 8), (2, 2), (3, 5), (8, 8), (16, 4), (16, 16), (64, 1)]}
    assert latencies == {(1, 1): 6, (1, 8): 6, (2, 2): 7, (3, 5): 8, (8, 8): 9, (16, 4): 10,
                         (16, 16): 10, (64, 1): 12}
    assert DotProductEngine(config=GemmConfig(rows=16, cols=16)).queue_depth == 12


def test_before_first_swap_uses_zero_weights():
    test_systolic.test_ws_before_first_swap_uses_zero_weights(core=DotProductEngine)


def test_drop_in_for_the_array_of_the_tensor_engine():
    config = GemmConfig(rows=3, cols=2, weight_bits=4, max_k=64, acc_bits=24,
                        a_buffer_depth=128, w_buffer_depth=8, acc_buffer_depth=32)
    jobs = make_jobs(config, [(5, 7, 5), (9, 2, 3)], seed=4)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine_module, "WeightStationaryArray", DotProductEngine)
        results, _, _ = run_engine(jobs, seed=3, stall=0.3)
    for n, (job, got) in enumerate(zip(jobs, results)):
        assert torch.equal(got, expected_engine(job)), f"job {n} {job.shape}"


def test_ports_and_validation():
    config = GemmConfig(rows=3, cols=5, weight_bits=4, acc_bits=24, max_k=256)
    engine = DotProductEngine(config=config)
    assert engine.signature.members == WeightStationaryArray(config=config).signature.members
    assert engine.config is config
    assert engine.tile_interval(2) == 4 and engine.tile_interval(9) == 9
    with pytest.raises(TypeError, match="DotProductEngine.config must be a GemmConfig"):
        DotProductEngine(config={"rows": 2})
    with pytest.raises(ValueError, match=r"DotProductEngine.config.dataflow='os' is not valid"):
        DotProductEngine(config=GemmConfig(dataflow="os"))
    with pytest.raises(TypeError):
        DotProductEngine(GemmConfig())
