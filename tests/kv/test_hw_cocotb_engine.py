"""KVCacheEngine on its emitted Verilog (Verilator, cocotb) against golden KVCache under LaCache
or StreamingLLM: every READ response of every layer, after every few decode steps and mid-step,
under stalls, for a small config with every kind of invalid command and over 4096 tokens, for a
paper-sized ladder and for StreamingLLM."""

import pytest

from hw.kv.cache import KVCacheEngine
from sim.runner import SimulationFailure, run
from tests.kv.test_hw_engine import make_session, small
from tests.kv.test_hw_prefill import prefill_config


def _vectors(config, *, steps, read_every, errors, seed):
    return make_session(config, steps=steps, seed=seed, read_every=read_every, errors=errors)


def _run(config, vectors):
    return run(KVCacheEngine(config=config), name="kv_engine", testbench="sim.tb.kv_engine",
               config=config, vectors=vectors, design_name="kv-lacache", seed=3)


# With room for prefills beyond one start-over: tests/kv/test_hw_cocotb_prefill.py runs them on
# the same build.
SMALL = prefill_config(layers=7, budget=24, sinks=2, span=3, overlap=1, kv_heads=2, elem_bits=6)
# 32 layers, C = 256, S0 = 4, S/O = 8/4 (R = 5, six classes), with a small row and room for a
# prefill of 1,000 tokens (tests/kv/test_hw_cocotb_prefill.py runs prefills on the same build).
PAPER = small(layers=32, budget=256, sinks=4, span=8, overlap=4, max_prefill=1000)


def test_cocotb_small_with_errors():
    room = SMALL.capacity - SMALL.sinks - SMALL.layers
    vectors = _vectors(SMALL, steps=SMALL.capacity + SMALL.R * (2 * (room // SMALL.A) + 4),
                       read_every=2, errors=True, seed=5)
    assert _run(SMALL, vectors) == 2


def test_cocotb_stream_of_4096_tokens():
    # Many start-overs of the ladder on the emitted Verilog; every layer read every 64 steps.
    vectors = _vectors(SMALL, steps=4096, read_every=64, errors=False, seed=6)
    assert _run(SMALL, vectors) == 2


def test_cocotb_paper_ladder_through_a_start_over():
    room = PAPER.capacity - PAPER.sinks - PAPER.layers
    vectors = _vectors(PAPER, steps=PAPER.capacity + PAPER.R * (room // PAPER.A + 3),
                       read_every=97, errors=False, seed=9)
    assert _run(PAPER, vectors) == 2


# StreamingLLM with a small row: the entry after the sinks dropped at every step.
STREAMING = small(policy="streaming", layers=6, budget=40, sinks=4, kv_heads=2, elem_bits=7)


def test_cocotb_streaming():
    vectors = _vectors(STREAMING, steps=2 * STREAMING.budget + 7, read_every=11, errors=True,
                       seed=4)
    assert _run(STREAMING, vectors) == 2


def test_cocotb_reports_a_mismatch():
    vectors = _vectors(SMALL, steps=SMALL.capacity + 4, read_every=5, errors=False, seed=1)
    vectors["expected"][len(vectors["expected"]) // 2] ^= 1 << 3
    with pytest.raises(SimulationFailure, match="2 of 2 cocotb tests failed"):
        _run(SMALL, vectors)
