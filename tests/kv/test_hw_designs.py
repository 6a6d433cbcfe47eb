# amaranth: UnusedElaboratable=no
"""The ``kv-lacache`` design: registration, build-sized defaults, cycle model, parameter checks,
block RAM tiling."""

import types

import pytest
from amaranth.hdl import Fragment, Instance

from hw.kv.config import KVConfig
from hw.lib.block_ram import RegisteredRAM, _ebr_mode
from hw.kv.cache import READ_LATENCY, KVCacheEngine
from hw.kv.designs import (KVEngineConfig, commit_cycles, peak_throughput, readout_cycles,
                           update_cycles_per_token)
from hw.kv.ladder import LadderIndexer
from hw.kv.slot_table import SlotTable
from hw.kv.storage import KVStorage
from hw.kv.streaming import StreamingIndexer
from hw.registry import _registry


def test_registered_with_a_config_that_fits_an_85f():
    design = _registry["kv-lacache"]
    assert design.config_cls is KVEngineConfig
    cfg = KVEngineConfig.from_params({"layers": "32", "budget": "256", "span": "8",
                                      "overlap": "4"})
    assert (cfg.kv_heads, cfg.head_dim, cfg.elem_bits, cfg.sinks) == (1, 2, 16, 4)
    # 32 layers x 512 rows (2**slot_bits) x 64 bits = 1 Mbit, 64 of the 85F's 208 EBR.
    assert design.make_core(cfg).config == cfg and cfg.slot_bits == 9
    assert cfg.layers * (1 << cfg.slot_bits) * 2 * cfg.head_dim * cfg.elem_bits == 1 << 20


def test_cycle_model_does_not_depend_on_the_budget():
    small, big = (KVConfig(layers=32, budget=c, sinks=4, span=8, overlap=4) for c in (64, 4096))
    # B = 7, R = 5: 32 writes, a 3-cycle commit, and every 5th token a walk of 2 * 7 + 9.
    assert update_cycles_per_token(small) == update_cycles_per_token(big) == 32 + 3 + 20 / 5
    assert commit_cycles(big, drop=True) == 2 * big.B + 9 == 23
    figures = peak_throughput(KVEngineConfig(), 100e6)      # S/O 16/0: B = 2, R = 1
    assert figures["tokens/s (cache update)"] == pytest.approx(100e6 / (32 + 3 + 10))
    assert readout_cycles(KVEngineConfig(), 257) == 256 + READ_LATENCY


def test_streaming_cycle_model():
    # StreamingLLM drops the entry after the sinks at every step: a walk of B = 1.
    config = KVConfig(layers=32, budget=256, sinks=4, policy="streaming")
    assert commit_cycles(config, drop=True) == 11
    assert update_cycles_per_token(config) == 32 + 11


@pytest.mark.parametrize("cls", [LadderIndexer, StreamingIndexer])
def test_indexers_check_their_policy(cls):
    with pytest.raises(TypeError, match=f"{cls.__name__}.config must be a KVConfig"):
        cls(config=None)
    own = "lacache" if cls is LadderIndexer else "streaming"
    other = "streaming" if cls is LadderIndexer else "lacache"
    with pytest.raises(ValueError, match=f"policy='{other}' is not supported: expected '{own}'"):
        cls(config=KVConfig(policy=other))
    assert cls(config=KVConfig(policy=own)).config == KVConfig(policy=own)


@pytest.mark.parametrize("cls", [SlotTable, KVStorage, KVCacheEngine])
def test_components_take_either_policy(cls):
    with pytest.raises(TypeError, match=f"{cls.__name__}.config must be a KVConfig"):
        cls(config=None)
    for policy in ("lacache", "streaming"):
        assert cls(config=KVConfig(policy=policy)).config == KVConfig(policy=policy)


def test_registered_ram_checks_and_tiles():
    with pytest.raises(ValueError, match="RegisteredRAM.depth=1 is out of range"):
        RegisteredRAM(width=8, depth=1)
    # The widest DP16KD aspect that holds the depth, and banks only beyond 16 Ki words.
    assert _ebr_mode(16384) == (1, 1) and _ebr_mode(1024) == (18, 1)
    assert _ebr_mode(2050) == (4, 1) and _ebr_mode(40000) == (1, 3)


@pytest.mark.parametrize("width, depth, cells", [(64, 32 * 512, 64), (9, 514, 1), (3, 40000, 9)])
def test_registered_ram_instantiates_ebr_on_ecp5(width, depth, cells):
    platform = types.SimpleNamespace(family="ecp5")
    ram = RegisteredRAM(width=width, depth=depth)
    fragment = Fragment.get(ram, platform)
    ebrs = [sub for sub, _name, _src in fragment.subfragments
            if isinstance(sub, Instance) and sub.type == "DP16KD"]
    assert len(ebrs) == cells
    assert all(e.parameters["REGMODE_B"] == "OUTREG" for e in ebrs)
