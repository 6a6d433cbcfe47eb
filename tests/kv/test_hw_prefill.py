# amaranth: UnusedElaboratable=no
"""Prefills on KVCacheEngine in amaranth.sim against golden KVCache under LaCache's clean mode
and StreamingLLM: prefills of every kind (within the budget, compacted without and with a
start-over, and long enough that the released code would need ``T >= 2``), followed by decode
steps; every READ of every layer after each, under stalls; prefills too long for the memory
rejected with ``overflow``; the cycles of the closing ``COMMIT`` against the cycle model. And
the indexer and slot tables alone (:func:`sim.kv_slot_stream.run_prefill`) through prefills of
the paper-sized ladders.

:func:`prefill_blocks` (block sizes covering every kind, checked on the golden model) is shared
with the cocotb test and ``bench/kv.py``.
"""

import random

import pytest
from amaranth.lib import data
from amaranth.sim import Simulator

from hw.kv.cache import READ_LATENCY, KVCacheEngine, command_layout
from hw.kv.designs import commit_cycles, prefill_commit_cycles
from hw.kv.slot_table import walk_cycles
from sim.kv_slot_stream import golden_calls, run_prefill
from sim.pysim_stream import stream_put
from tests.kv.test_hw_engine import _Session, make_session, run_pysim, small
from tests.kv.test_hw_slot_table import PAPER as SLOT_PAPER
from tests.kv.test_hw_slot_table import STREAMING as SLOT_STREAMING
from tests.kv.test_hw_slot_table import random_configs


def prefill_blocks(config, decode=3):
    """Block sizes (``1``: a decode step) that, from an empty cache, prefill within the budget,
    then compact prefills without a start-over, with one (``T = 1``) and beyond one
    (``T >= 2``, split), each followed by ``decode`` steps. Checked on the golden model."""
    cap, rows = config.capacity, config.rows_per_layer
    blocks = [max(1, config.budget // 2), cap - config.budget // 2 + 1] + [1] * decode
    blocks += [3] + [1] * decode
    for kind in (0, 1, 2):              # ladder (as many windows as can be), start-over, split
        sizes = range(2, rows - cap + 1)
        for size in reversed(sizes) if kind == 0 else sizes:
            T = golden_calls(config, blocks + [size])[-1][0]
            if T is not None and min(T, 2) == kind:
                blocks += [size] + [1] * decode
                break
    return blocks


def prefill_config(**kw):
    """A small-row config whose ``max_prefill`` reaches beyond one start-over (``T >= 2``)."""
    probe = small(**kw)
    if probe.policy == "streaming":
        return probe.replace(max_prefill=2 * probe.budget)
    room0 = probe.capacity - probe.sinks - probe.layers
    return probe.replace(max_prefill=3 * (room0 // probe.A) * probe.R + probe.R + 2)


CONFIGS = [
    prefill_config(layers=6, budget=20, sinks=2, span=2, overlap=0),
    prefill_config(layers=9, budget=22, sinks=3, span=3, overlap=1, head_dim=3, elem_bits=16),
    prefill_config(layers=5, budget=14, sinks=0, span=2, overlap=1, kv_heads=2, elem_bits=5),
    prefill_config(policy="streaming", layers=4, budget=9, sinks=2, kv_heads=2, elem_bits=5),
]


@pytest.mark.parametrize("config", CONFIGS[:3], ids=lambda c: f"L{c.layers}-C{c.budget}")
def test_blocks_cover_every_kind_of_prefill(config):
    kinds = [T for T, _ in golden_calls(config, prefill_blocks(config))]
    assert None in kinds and 0 in kinds and 1 in kinds and max(k or 0 for k in kinds) >= 2


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.policy}-L{c.layers}-C{c.budget}")
def test_prefills_match_golden(config):
    blocks = prefill_blocks(config, decode=1)
    # Then a prefill longer than the memory: APPENDs rejected from the first that leaves no row.
    blocks += [config.rows_per_layer + 4, 1, 1]
    run_pysim(config, make_session(config, blocks=blocks, seed=config.layers, read_every=1,
                                   errors=True))


def test_random_configs_and_prefills():
    rng = random.Random(7)
    for config in random_configs(2, seed=23):
        config = small(**{k: getattr(config, k) for k in ("layers", "budget", "sinks", "span",
                                                          "overlap")},
                       max_prefill=rng.randint(1, 3 * config.capacity))
        blocks = [rng.choice([1, 1, 1, rng.randint(1, config.rows_per_layer)])
                  for _ in range(10)]
        run_pysim(config, make_session(config, blocks=blocks, seed=rng.randrange(1 << 16),
                                       read_every=2, errors=True), seed=rng.randrange(1 << 16))


def _split_prefill(config):
    """Tokens that, from an empty cache, need more than one start-over (``T >= 2``)."""
    F1 = (config.capacity - config.sinks - config.layers) // config.A * config.R
    return config.capacity + 2 * F1 + 1


@pytest.mark.parametrize("config", SLOT_PAPER, ids=lambda c: f"L{c.layers}-S{c.span}-O{c.overlap}")
def test_paper_configs_prefills(config):
    # Within the budget, then beyond one start-over (a split pass in clean mode), then one.
    config = config.replace(max_prefill=_split_prefill(config))
    F1 = (config.capacity - config.sinks - config.layers) // config.A * config.R
    blocks = [config.budget // 2, 1, 1, _split_prefill(config) - config.budget // 2 - 2, 1, 1,
              F1 + config.R, 1, 1, 1]
    calls = golden_calls(config, blocks)
    assert calls[0][0] is None and calls[3][0] >= 2 and calls[6][0] == 1
    # The tables and indexer alone take every cycle of the engine's model but its command
    # decode.
    assert run_prefill(config, blocks) == [prefill_commit_cycles(config, passes) - 1
                                           for size, (_, passes) in zip(blocks, calls) if size > 1]


@pytest.mark.parametrize("config", SLOT_STREAMING[:3], ids=lambda c: f"L{c.layers}-C{c.budget}")
def test_streaming_prefills(config):
    config = config.replace(max_prefill=2 * config.budget + 3)
    blocks = [config.budget + 2, 1, 1, config.rows_per_layer - config.budget, 1, 3, 1]
    assert run_prefill(config, blocks) == [
        prefill_commit_cycles(config, passes) - 1
        for size, (_, passes) in zip(blocks, golden_calls(config, blocks)) if size > 1]


def _measure(config, blocks):
    """Per block, the cycles from offering its closing ``COMMIT`` (to an idle engine) to the
    first response of a READ offered right after, without stalls."""
    s = _Session(config, seed=1)
    marks = []                  # (index of the COMMIT, responses expected before it)
    for size in blocks:
        for token in range(size):
            for layer in range(config.layers):
                s.write(layer)
            if token < size - 1:
                assert s.append()
        marks.append((len(s.commands), len(s.expected)))
        s.commit()
        s.read(0)
    dut = KVCacheEngine(config=config)
    layout = command_layout(config)
    times, now = [], [0]

    async def clock(ctx):
        while True:
            await ctx.tick()
            now[0] += 1

    async def consumer(ctx):
        ctx.set(dut.rsp.ready, 1)
        for n in range(len(s.expected)):
            await ctx.tick().until(dut.rsp.valid)
            if n in {before for _, before in marks}:
                times.append(now[0])

    async def producer(ctx):
        starts = {at for at, _ in marks}
        for n, word in enumerate(s.commands):
            if n in starts:
                for _ in range(40):                     # idle: everything before has drained
                    await ctx.tick()
                offered.append(now[0])
            await stream_put(ctx, dut.cmd, data.Const(layout, word))

    offered = []
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(clock, background=True)
    sim.add_testbench(producer, background=True)
    sim.add_testbench(consumer)
    sim.run()
    return [t - o for o, t in zip(offered, times)]


@pytest.mark.parametrize("config", [CONFIGS[0], CONFIGS[1], CONFIGS[3]],
                         ids=lambda c: f"{c.policy}-L{c.layers}")
def test_prefill_commit_cycles_match_the_model(config):
    blocks = [1] + prefill_blocks(config, decode=1)
    got = _measure(config, blocks)
    # The READ's own latency and the skid buffer's cycle: what the first (not compacting)
    # decode COMMIT adds to its 3.
    base = got[0] - commit_cycles(config, drop=False)
    calls = golden_calls(config, blocks)
    for n, (size, (_, passes)) in enumerate(zip(blocks, calls)):
        model = (prefill_commit_cycles(config, passes) if size > 1
                 else commit_cycles(config, drop=bool(passes)))
        assert got[n] - base == model, f"block {n} of {size} tokens"
    assert base >= READ_LATENCY
    assert walk_cycles(config, 1) == commit_cycles(config, drop=True) - 1
