"""GemmConfig: validation messages, accumulator sizing, JSON/--param round trips and the
analytic performance model (hand-computed; the simulations check it against hardware)."""

import json

import pytest

from hw.gemm.config import GemmConfig, required_acc_bits


@pytest.mark.parametrize("params, message", [
    ({"rows": 0}, r"GemmConfig.rows=0 is out of range: expected 1..64"),
    ({"cols": 65}, r"GemmConfig.cols=65 is out of range: expected 1..64"),
    ({"dataflow": "is"}, r"GemmConfig.dataflow='is' is not valid: expected one of 'ws', 'os'"),
    ({"act_bits": 4}, r"GemmConfig.act_bits=4 is not valid: expected one of 8"),
    ({"weight_bits": 3}, r"GemmConfig.weight_bits=3 is not valid: expected one of 8, 4, 2"),
    ({"acc_bits": 27}, r"GemmConfig.acc_bits=27 is out of range: expected 28..64 \(sums of "
                       r"max_k=4096 W8A8 products need 28 bits\)"),
    ({"acc_bits": 65}, r"acc_bits=65 is out of range: expected 28..64"),
    ({"max_k": 0}, r"GemmConfig.max_k=0 is out of range"),
    ({"multiplier": "lut"}, r"GemmConfig.multiplier='lut' needs weight_bits of 4 or 2, not 8"),
    ({"multiplier": "fpga"}, r"GemmConfig.multiplier='fpga' is not valid"),
    ({"a_buffer_depth": 0}, r"GemmConfig.a_buffer_depth=0 is out of range: expected 1.."),
    ({"acc_buffer_depth": 0}, r"GemmConfig.acc_buffer_depth=0 is out of range"),
    ({"rows": 2.0}, r"GemmConfig.rows must be an integer"),
])
def test_validation_names_parameter_value_and_range(params, message):
    with pytest.raises(ValueError, match=message):
        GemmConfig(**params)


def test_required_acc_bits_hand_computed():
    # One W8A8 product: (-128) * (-128) = 16384 needs 16 bits signed.
    assert required_acc_bits(1) == 16
    # 4096 of them: 2**26 needs 28 bits; 2**31 - 1 // 2**14 = 131071 still fits 32.
    assert required_acc_bits(4096) == 28
    assert required_acc_bits(131071) == 32 and required_acc_bits(131072) == 33
    # W2A8: products in -254..256; W4A8: -1016..1024.
    assert required_acc_bits(1, weight_bits=2) == 10
    assert required_acc_bits(1, weight_bits=4) == 12
    assert GemmConfig(weight_bits=2, max_k=64, acc_bits=16).acc_bits == 16


def test_derived_properties():
    assert GemmConfig().multiplier_kind == "dsp"
    assert GemmConfig(weight_bits=4).multiplier_kind == "lut"
    assert GemmConfig(weight_bits=2, multiplier="dsp").multiplier_kind == "dsp"
    assert GemmConfig(rows=8).psum_bits == required_acc_bits(8) == 19
    assert GemmConfig(rows=64, weight_bits=2, max_k=64, acc_bits=16).psum_bits == 16
    assert GemmConfig(rows=3, cols=5).peak_macs_per_cycle == 15


def test_json_and_params_round_trip():
    config = GemmConfig(rows=3, cols=5, dataflow="os", weight_bits=2, multiplier="lut")
    data = json.loads(config.to_json())
    assert data["type"] == "GemmConfig" and data["params"]["weight_bits"] == 2
    assert GemmConfig.from_dict(data["params"]) == config
    assert GemmConfig.from_params({"rows": "3", "cols": "5", "dataflow": "os",
                                   "weight_bits": "2", "multiplier": "lut"}) == config
    with pytest.raises(ValueError, match="GemmConfig has no parameter 'size'"):
        GemmConfig.from_params({"size": "8"})


def test_ws_cycle_model_hand_computed():
    config = GemmConfig(rows=4, cols=4)
    assert config.latency == 4 + 4 + 5
    # One tile (K = rows, N = cols), M = 10: 4 weight rows, 10 vectors, latency.
    assert config.array_cycles(10, 4, 4) == 4 + 10 + 13
    # K = 8, N = 8: 4 weight tiles; each starts max(M, 2*4 + 4 - 1 = 11) cycles after the last.
    assert config.tiles(10, 8, 8) == 4
    assert config.array_cycles(10, 8, 8) == 4 + 3 * 11 + 10 + 13
    assert config.array_cycles(100, 8, 8) == 4 + 3 * 100 + 100 + 13
    assert config.utilization(100, 8, 8) == pytest.approx(100 * 8 * 8 / (16 * 417))


def test_os_cycle_model_hand_computed():
    config = GemmConfig(rows=4, cols=2, dataflow="os")
    # One tile of 4 x 2 outputs, K = 9: 9 slices, latency 11, then 3 more rows.
    assert config.array_cycles(4, 9, 2) == 9 + 11 + 3
    # M = 8, N = 4: 4 tiles; K = 2 < rows, so tiles start every 4 cycles.
    assert config.tiles(8, 2, 4) == 4
    assert config.array_cycles(8, 2, 4) == 3 * 4 + 2 + 11 + 3
    with pytest.raises(ValueError, match="tiles.m=0 is out of range"):
        config.array_cycles(0, 2, 4)
