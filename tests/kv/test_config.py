"""KVConfig: the configurations LaCache published, derived sizes, and eager validation."""

import json

import pytest

from golden.lacache import LaCache, ladder_shape
from hw.kv.config import KVConfig


# (layers, span, overlap) -> (B, A, R): the LaCache paper's settings, worked out by hand from
# B = 1 + ceil((L - S) / (S - O)), A = min(ceil(S / (S - O)), B), R = B - A.
PAPER = {
    (32, 16, 0): (2, 1, 1),     # 1 + ceil(16/16); ceil(16/16)
    (32, 8, 4): (7, 2, 5),      # 1 + ceil(24/4);  ceil(8/4)
    (24, 9, 7): (9, 5, 4),      # 1 + ceil(15/2);  ceil(9/2)
    (28, 14, 0): (2, 1, 1),     # 1 + ceil(14/14); ceil(14/14)
}


@pytest.mark.parametrize("shape, bar", PAPER.items())
def test_paper_configs_are_valid(shape, bar):
    layers, span, overlap = shape
    config = KVConfig(layers=layers, budget=256, sinks=4, span=span, overlap=overlap)
    assert (config.B, config.A, config.R) == bar == ladder_shape(layers, span, overlap)
    assert config.classes == config.R + 1
    assert config.capacity == 256 + config.R // 2


def test_sizes_of_the_default():
    config = KVConfig()     # 32 layers, 8 KV heads of 128 x 16 bit, budget 256, S/O 16/0
    assert config.capacity == 256 and config.rows_per_layer == 257
    assert config.slot_bits == 9                    # 257 physical rows: 0..256
    assert config.slot_table_bits == 2 * 257 * 9    # R + 1 = 2 classes
    assert config.kv_rows == 2 * 32 * 8 * 257
    assert config.kv_bytes == 2 * 32 * 8 * 257 * 128 * 2


def test_prefill_sizes_the_rows_not_the_classes():
    config = KVConfig(span=8, overlap=4, max_prefill=1500)     # capacity 258
    assert config.rows_per_layer == 258 + 1500 and config.slot_bits == 11
    assert config.classes == config.R + 1 == 6


def test_streaming_sizes():
    config = KVConfig(policy="streaming", budget=64, sinks=4, span=40)   # span is unused here
    assert (config.recent, config.capacity, config.classes) == (60, 64, 1)
    assert config.slot_bits == 7


def test_json_round_trip_and_params():
    config = KVConfig(layers=24, span=9, overlap=7, policy="lacache", elem_bits=8)
    data = json.loads(config.to_json())
    assert data["type"] == "KVConfig"
    assert KVConfig.from_dict(data["params"]) == config
    assert KVConfig.from_params({"policy": "streaming", "budget": "100"}).recent == 96


def test_min_layers_is_exactly_where_r_becomes_positive():
    for span in range(1, 20):
        for overlap in range(span):
            minimum = KVConfig(layers=64, span=span, overlap=overlap, policy="streaming").min_layers
            for layers in range(span, 64):
                assert (ladder_shape(layers, span, overlap)[2] >= 1) == (layers >= minimum)


def test_min_budget_is_tight():
    """At ``min_budget`` a long stream runs; one less and the released code divides by zero at
    its first start-over, because ``F1 = ((C - S0 - L) // A) * R`` is 0."""
    for layers, span, overlap in PAPER:
        config = KVConfig(layers=layers, span=span, overlap=overlap, budget=64, sinks=4)
        lowest = config.min_budget
        assert config.replace(budget=lowest).budget == lowest
        ok = LaCache(layers, lowest, 4, span, overlap)
        for n in range(lowest + 1, 4 * lowest):
            ok.step(min(n, ok.C + 1))
        broken = LaCache(layers, lowest - 1, 4, span, overlap)
        with pytest.raises(ZeroDivisionError):
            for n in range(lowest, 4 * lowest):
                broken.step(min(n, broken.C + 1))


@pytest.mark.parametrize("params, match", [
    (dict(layers=0), r"KVConfig\.layers=0 is out of range"),
    (dict(kv_heads=0), r"KVConfig\.kv_heads=0 is out of range"),
    (dict(head_dim=0), r"KVConfig\.head_dim=0"),
    (dict(elem_bits=65), r"KVConfig\.elem_bits=65"),
    (dict(budget=0), r"KVConfig\.budget=0"),
    (dict(sinks=256), r"KVConfig\.sinks=256 is out of range: expected 0\.\.255"),
    (dict(sinks=-1), r"KVConfig\.sinks=-1"),
    (dict(span=0), r"KVConfig\.span=0"),
    (dict(overlap=16), r"KVConfig\.overlap=16 is out of range: expected 0\.\.15"),
    (dict(policy="h2o"), r"KVConfig\.policy='h2o' is not valid"),
    (dict(layers="32"), r"KVConfig\.layers must be an integer"),
    (dict(span=32), r"KVConfig\.layers=32 is too few for span=32.*expected layers >= 33.*R = B - A >= 1"),
    (dict(layers=10, span=9, overlap=7), r"KVConfig\.layers=10 is too few.*>= 18.*B=2, A=2, R=0"),
    (dict(budget=36), r"KVConfig\.budget=36 is too small: expected >= 37"),
    (dict(span=8, overlap=4, budget=35), r"KVConfig\.budget=35 is too small: expected >= 36"),
    (dict(policy="streaming", budget=4, sinks=4), r"KVConfig\.sinks=4 is out of range"),
    (dict(max_prefill=0), r"KVConfig\.max_prefill=0 is out of range: expected 1\.\.16777216"),
])
def test_validation_names_the_parameter(params, match):
    with pytest.raises(ValueError, match=match):
        KVConfig(**params)


def test_streaming_ignores_the_ladder_constraints():
    config = KVConfig(policy="streaming", layers=1, span=1, budget=2, sinks=1)
    assert config.recent == 1
