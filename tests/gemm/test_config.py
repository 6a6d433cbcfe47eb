# amaranth: UnusedElaboratable=no
"""GemmConfig: validation messages, accumulator sizing, JSON/--param round trips and the
analytic performance model (hand-computed; the simulations check it against hardware)."""

import json

import pytest

from hw.gemm.config import MULTIPLIER_LATENCY, GemmConfig, required_acc_bits
from hw.gemm.dot_product import DotProductEngine
from hw.gemm.requant import ChannelRequantizer


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
    ({"array": "tree"}, r"GemmConfig.array='tree' is not valid: expected one of 'systolic', "
                        r"'dot-product'"),
    ({"array": "dot-product", "dataflow": "os"},
     r"GemmConfig.dataflow='os' is not valid with array='dot-product': the dot-product engine "
     r"is weight-stationary, expected 'ws'"),
    ({"scale_bits": 19}, r"GemmConfig.scale_bits=19 is out of range: expected 2..18"),
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
    assert GemmConfig.from_params({"array": "dot-product"}) == GemmConfig(array="dot-product")
    with pytest.raises(ValueError, match="GemmConfig has no parameter 'size'"):
        GemmConfig.from_params({"size": "8"})


def test_ws_cycle_model_hand_computed():
    config = GemmConfig(rows=4, cols=4)
    latency = 4 + 4 + MULTIPLIER_LATENCY + 2
    assert config.latency == latency
    # One tile (K = rows, N = cols), M = 10: 4 weight rows, 10 vectors, latency.
    assert config.array_cycles(10, 4, 4) == 4 + 10 + latency
    # K = 8, N = 8: 4 weight tiles; each starts max(M, 2*4 + 4 - 1 = 11) cycles after the last.
    assert config.tiles(10, 8, 8) == 4
    assert config.array_cycles(10, 8, 8) == 4 + 3 * 11 + 10 + latency
    assert config.array_cycles(100, 8, 8) == 4 + 3 * 100 + 100 + latency
    assert config.utilization(100, 8, 8) == pytest.approx(
        100 * 8 * 8 / (16 * (404 + latency)))


def test_os_cycle_model_hand_computed():
    config = GemmConfig(rows=4, cols=2, dataflow="os")
    latency = 4 + 2 + MULTIPLIER_LATENCY + 2
    # One tile of 4 x 2 outputs, K = 9: 9 slices, latency, then 3 more rows.
    assert config.array_cycles(4, 9, 2) == 9 + latency + 3
    # M = 8, N = 4: 4 tiles; K = 2 < rows, so tiles start every 4 cycles.
    assert config.tiles(8, 2, 4) == 4
    assert config.array_cycles(8, 2, 4) == 3 * 4 + 2 + latency + 3
    with pytest.raises(ValueError, match="tiles.m=0 is out of range"):
        config.array_cycles(0, 2, 4)


def test_dot_product_model_is_the_engines():
    for rows, cols in [(1, 1), (2, 3), (3, 5), (8, 8), (16, 4), (64, 1)]:
        config = GemmConfig(rows=rows, cols=cols, array="dot-product")
        engine = DotProductEngine(config=config)
        assert config.latency == engine.latency
        for depth in (1, rows, rows + 1, 3 * rows + 2):
            assert config.tile_interval(depth) == engine.tile_interval(depth)
        assert config.array_cycles(7, 2 * rows + 1, cols + 1) == engine.array_cycles(
            7, 2 * rows + 1, cols + 1)


def test_requant_latency_hand_computed():
    # 32-bit accumulators: a DSP for the top 18 bits, 14 bits in 5 LUT multipliers of 3; six
    # products in a 3-level tree; quotient, rounding, saturation.
    assert GemmConfig().requant_chunks == 5
    assert GemmConfig().requant_latency == MULTIPLIER_LATENCY + 3 + 3
    # Up to 18 bits the DSP alone.
    config = GemmConfig(weight_bits=2, max_k=64, acc_bits=18)
    assert config.requant_chunks == 0 and config.requant_latency == MULTIPLIER_LATENCY + 3
    assert GemmConfig(acc_bits=64).requant_chunks == 16
    for config in (GemmConfig(), GemmConfig(acc_bits=19, max_k=8), GemmConfig(acc_bits=64)):
        assert ChannelRequantizer(config=config).latency == config.requant_latency


def test_engine_cycle_model_hand_computed():
    ml = MULTIPLIER_LATENCY
    # ws 4x4, M=10, K=8, N=8: 4 weight tiles every max(10, 11) cycles; the first activation
    # vector enters at cycle max(5, 4 + 2) = 6, the last at 6 + 3 * 11 + 9 = 48; it leaves the
    # array latency 10 + ml later, then 4 accumulator stages, the requantizer (ml + 6), the
    # queue's 2, and 1 for counting both ends.
    assert GemmConfig(rows=4, cols=4).engine_cycles(10, 8, 8) == 48 + 10 + ml + 4 + ml + 6 + 3
    # os 4x2, M=9, K=5, N=3: 3 x 2 output tiles every max(5, 4) cycles from cycle 5, the last
    # slice at 5 + 5 * 5 + 4 = 34; the last real row is row 0 of its tile: latency 8 + ml;
    # 1 register, the requantizer, the queue, both ends.
    os = GemmConfig(rows=4, cols=2, dataflow="os")
    assert os.engine_cycles(9, 5, 3) == 34 + 8 + ml + 1 + ml + 6 + 3
    # ... and row 3 of its tile for M=12.
    assert os.engine_cycles(12, 5, 3) == os.engine_cycles(9, 5, 3) + 3
    # dot-product 8x8, M=20, K=16, N=8: 2 tiles, max(20, 9) apart; the weights hold the first
    # vector back to cycle 8 + 2; latency ml + 3 + 3.
    dp = GemmConfig(rows=8, cols=8, array="dot-product")
    assert dp.engine_cycles(20, 16, 8) == 10 + 20 + 19 + ml + 6 + 4 + ml + 6 + 3
    assert dp.engine_utilization(20, 16, 8) == pytest.approx(
        20 * 16 * 8 / (64 * dp.engine_cycles(20, 16, 8)))
