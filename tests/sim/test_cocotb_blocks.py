"""The shared blocks on their emitted Verilog, in cocotb, against the golden models."""

import random

import pytest
import torch

from golden.fixed import requantize
from hw.lib.block_configs import RequantizerConfig, StreamFIFOConfig
from hw.lib.fixed import Requantizer
from hw.lib.stream import StreamFIFO
from sim.runner import SimulationFailure, run


def _requantizer_vectors(config, seed=0):
    src = config.src
    if src.width <= 12:
        inputs = list(range(src.min_int, src.max_int + 1))
    else:
        rng = random.Random(seed)
        inputs = [src.min_int, src.max_int, 0, -1 if src.signed else 1]
        inputs += [rng.randint(src.min_int, src.max_int) for _ in range(4000)]
    expected = requantize(torch.tensor(inputs, dtype=torch.int64), src, config.dst,
                          rounding=config.rounding, overflow=config.overflow).tolist()
    return {"inputs": inputs, "expected": expected}


def _run_requantizer(config, vectors):
    core = Requantizer(src=config.src, dst=config.dst, rounding=config.rounding,
                       overflow=config.overflow, registered=config.registered)
    return run(core, name="requantizer", testbench="sim.tb.requantizer", config=config,
               vectors=vectors, design_name="requantizer", seed=1)


REQUANTIZER_CONFIGS = [
    # The default (wide Q16.16 to int8, ties to even, saturating), registered.
    RequantizerConfig(),
    # Every input of a small format; ties away from zero; signed to unsigned, wrapping, no clock.
    {"src": "SQ(6,4)", "dst": "UQ(3,1)", "rounding": "half_away", "overflow": "wrap",
     "registered": "false"},
    # Widening with a left shift, unsigned to signed.
    {"src": "UQ(5,2)", "dst": "SQ(8,5)", "rounding": "trunc"},
    # Narrowing by many bits, ties up, saturating.
    {"src": "SQ(3,9)", "dst": "SQ(2,1)", "rounding": "half_up"},
]


@pytest.mark.parametrize("params", REQUANTIZER_CONFIGS, ids=lambda p: "default" if not isinstance(
    p, dict) else "-".join(p.values()))
def test_requantizer_matches_golden(params):
    config = params if isinstance(params, RequantizerConfig) else RequantizerConfig.from_params(params)
    assert _run_requantizer(config, _requantizer_vectors(config)) == 1


def test_runner_reports_a_mismatch():
    """The harness must be able to fail: one wrong expectation makes the run raise."""
    config = RequantizerConfig.from_params({"src": "SQ(6,4)", "dst": "UQ(3,1)",
                                            "rounding": "half_away", "overflow": "wrap",
                                            "registered": "false"})
    vectors = _requantizer_vectors(config)
    vectors["expected"][17] ^= 1
    with pytest.raises(SimulationFailure, match="1 of 1 cocotb tests failed"):
        _run_requantizer(config, vectors)


FIFO_CONFIGS = [StreamFIFOConfig(width=8, depth=1), StreamFIFOConfig(width=5, depth=2),
                StreamFIFOConfig(width=32, depth=16), StreamFIFOConfig()]


@pytest.mark.parametrize("config", FIFO_CONFIGS, ids=lambda c: f"w{c.width}-d{c.depth}")
def test_stream_fifo_in_order_under_stalls(config):
    core = StreamFIFO(config.width, depth=config.depth)
    assert run(core, name="stream_fifo", testbench="sim.tb.stream_fifo", config=config,
               design_name="stream-fifo", seed=7) == 3
