# amaranth: UnusedElaboratable=no
"""LadderIndexer and SlotTable in amaranth.sim against golden LaCache and KVCache, over paper,
long and random streams (the checks themselves are in :mod:`sim.kv_slot_stream`); prefills in
``test_hw_prefill.py``."""

import random

import pytest

from hw.kv.config import KVConfig
from hw.kv.slot_table import commit_cycles
from sim.kv_slot_stream import run_stream


def random_configs(count, seed):
    """Valid random LaCache configs, small enough to run thousands of steps."""
    rng = random.Random(seed)
    out = []
    while len(out) < count:
        span = rng.randint(1, 6)
        overlap = rng.randint(0, span - 1)
        layers = rng.randint(2, 14)
        try:
            probe = KVConfig(layers=layers, span=span, overlap=overlap, budget=4096, sinks=0)
        except ValueError:
            continue
        sinks = rng.randint(0, 5)
        budget = probe.replace(sinks=sinks).min_budget + rng.randint(0, 12)
        out.append(KVConfig(layers=layers, span=span, overlap=overlap, sinks=sinks,
                            budget=max(budget, sinks + 1)))
    return out


PAPER = [
    KVConfig(layers=32, budget=256, sinks=4, span=16, overlap=0),
    KVConfig(layers=32, budget=256, sinks=4, span=8, overlap=4),
    KVConfig(layers=24, budget=256, sinks=4, span=9, overlap=7),
    KVConfig(layers=28, budget=256, sinks=4, span=14, overlap=0),
]


@pytest.mark.parametrize("config", PAPER, ids=lambda c: f"L{c.layers}-S{c.span}-O{c.overlap}")
def test_paper_configs_through_start_overs(config):
    # Long enough for at least two start-overs: the first compaction at C + 1, then one per R
    # tokens for room0 // A rungs.
    room0 = config.capacity - config.sinks - config.layers
    tokens = config.capacity + 1 + config.R * (2 * (room0 // config.A) + 3)
    cycles = run_stream(config, tokens, check_every=7)
    assert max(cycles) == commit_cycles(config, drop=True)


def test_long_stream_4096_tokens():
    config = KVConfig(layers=6, budget=20, sinks=2, span=2, overlap=0)
    cycles = run_stream(config, 4096)
    assert set(cycles) == {commit_cycles(config, drop=False), commit_cycles(config, drop=True)}


@pytest.mark.parametrize("config", random_configs(6, seed=11), ids=str)
def test_random_configs(config):
    run_stream(config, 3 * config.capacity + 40)


STREAMING = [
    KVConfig(policy="streaming", layers=4, budget=10, sinks=2),
    KVConfig(policy="streaming", layers=3, budget=7, sinks=0),
    KVConfig(policy="streaming", layers=2, budget=4, sinks=3),     # a recent window of 1
    KVConfig(policy="streaming", layers=1, budget=1, sinks=0),
    KVConfig(policy="streaming", layers=32, budget=256, sinks=4),
]


@pytest.mark.parametrize("config", STREAMING, ids=lambda c: f"L{c.layers}-C{c.budget}-S{c.sinks}")
def test_streaming_configs(config):
    # Once full, every step drops the entry after the sinks: a walk of one window node.
    cycles = run_stream(config, 3 * config.budget + 20, check_every=1 if config.budget < 64 else 17)
    assert cycles[config.budget:] == [commit_cycles(config, drop=True)] * (2 * config.budget + 20)
