# amaranth: UnusedElaboratable=no
"""The ``kv-lacache`` design: registration, build-sized defaults, cycle model, parameter checks."""

import pytest

from hw.kv.config import KVConfig
from hw.kv.designs import KVEngineConfig, commit_cycles, peak_throughput, update_cycles_per_token
from hw.kv.ladder import LadderIndexer
from hw.kv.slot_table import SlotTable
from hw.kv.storage import KVStorage
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
    assert update_cycles_per_token(small) == update_cycles_per_token(big) == 32 + 2 + 9 / 5
    assert commit_cycles(big, drop=True) == big.B + 4 == 11
    figures = peak_throughput(KVEngineConfig(), 100e6)
    assert figures["tokens/s (cache update)"] == pytest.approx(100e6 / (32 + 2 + 4 / 1))


@pytest.mark.parametrize("cls", [LadderIndexer, SlotTable, KVStorage])
def test_components_check_their_config(cls):
    with pytest.raises(TypeError, match=f"{cls.__name__}.config must be a KVConfig"):
        cls(config=None)
    if cls is not KVStorage:
        with pytest.raises(ValueError, match="policy='streaming' is not supported"):
            cls(config=KVConfig(policy="streaming"))
    assert cls(config=KVConfig()).config == KVConfig()
