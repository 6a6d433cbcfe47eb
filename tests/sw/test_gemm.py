"""sw.gemm: quantized torch models through the simulated engine, equal to the golden model bit
for bit and within quantization error of float torch; clear errors for bad input."""

import pytest
import torch

from golden.gemm import matmul_int, quantize_activations, quantize_weights, requantize
from hw.gemm.config import GemmConfig
from sw.gemm import GemmJob, linear, matmul, requant_scale

CONFIG = GemmConfig(rows=4, cols=4, max_k=64, acc_bits=24, a_buffer_depth=256,
                    w_buffer_depth=16, acc_buffer_depth=64)


def _golden_linear(x, layer, out_scale, relu):
    qx, sx = quantize_activations(x)
    qw, sw = quantize_weights(layer.weight.detach().t(), CONFIG.weight_bits)
    multiplier, shift = requant_scale(sx * sw / out_scale, scale_bits=CONFIG.scale_bits)
    return requantize(matmul_int(qx, qw), multiplier, shift, relu=relu)


def _check_layer(x, layer, *, relu=False):
    with torch.no_grad():
        ref = layer(x).to(torch.float64)
        if relu:
            ref = ref.clamp(min=0)
    out_scale = float((ref - layer.bias.detach() if layer.bias is not None else ref)
                      .abs().max()) / 127
    y, codes = linear(x, layer, config=CONFIG, out_scale=out_scale, relu=relu)
    assert torch.equal(codes, _golden_linear(x, layer, out_scale,
                                             relu and layer.bias is None))
    # int8 activations, weights and outputs: a few percent of the output range.
    assert float((y - ref).abs().max()) <= 0.05 * float(ref.abs().max()) + 1e-9
    return y


def test_two_layer_mlp():
    torch.manual_seed(0)
    fc1, fc2 = torch.nn.Linear(12, 10), torch.nn.Linear(10, 6)
    x = torch.randn(5, 12)
    h = _check_layer(x, fc1, relu=True)
    _check_layer(h.to(torch.float32), fc2)


def test_transformer_block_linears():
    torch.manual_seed(1)
    d, ff, tokens = 8, 16, 6
    x = torch.randn(tokens, d)
    for layer in (torch.nn.Linear(d, 3 * d, bias=False), torch.nn.Linear(d, d),
                  torch.nn.Linear(d, ff)):
        _check_layer(x, layer)
    _check_layer(torch.randn(tokens, ff), torch.nn.Linear(ff, d))


@pytest.mark.parametrize("config", [
    CONFIG,
    GemmConfig(rows=4, cols=4, dataflow="os", max_k=64, acc_bits=24, a_buffer_depth=256,
               w_buffer_depth=64),
    GemmConfig(rows=4, cols=4, array="dot-product", max_k=64, acc_bits=24, a_buffer_depth=256,
               w_buffer_depth=16, acc_buffer_depth=64),
], ids=["ws", "os", "dot-product"])
def test_matmul_matches_golden(config):
    a = torch.tensor([[127, -128, 5], [0, 1, -1]])
    w = torch.tensor([[1, 2], [3, -4], [-128, 127]])
    got = matmul(a, w, [3, 5], [2, 3], config=config)
    assert torch.equal(got, requantize(matmul_int(a, w), torch.tensor([3, 5]),
                                       torch.tensor([2, 3])))


@pytest.mark.parametrize("a, w, mult, shift, message", [
    (torch.zeros(2, 3, dtype=torch.int64), torch.zeros(4, 2, dtype=torch.int64), 1, 0,
     r"shape mismatch: a is \(2, 3\), w is \(4, 2\)"),
    (torch.full((2, 3), 128), torch.zeros(3, 2, dtype=torch.int64), 1, 0,
     r"a values must be within -128..127 \(int8\), got 128..128"),
    (torch.zeros(2, 3, dtype=torch.int64), torch.zeros(3, 2), 1, 0, r"w must be an integer"),
    (torch.zeros(2, 3, dtype=torch.int64), torch.zeros(3, 2, dtype=torch.int64), 1, 63,
     r"shift values must be within 0..62"),
    (torch.zeros(2, 3, dtype=torch.int64), torch.zeros(3, 2, dtype=torch.int64), [1, 2, 3], 0,
     r"multiplier must have one value per output channel \(2\), got 3"),
    (torch.zeros(65, 3, dtype=torch.int64), torch.zeros(3, 2, dtype=torch.int64), 1, 0,
     r"M = 65 exceeds the engine's acc_buffer_depth = 64"),
])
def test_bad_input_is_a_clear_error(a, w, mult, shift, message):
    with pytest.raises((ValueError, TypeError), match=message):
        GemmJob(CONFIG, a, w, mult, shift)


def test_w2_range_and_linear_shape_errors():
    w2 = GemmConfig(rows=2, cols=2, weight_bits=2)
    with pytest.raises(ValueError, match=r"w values must be within -2..1 \(int2\), got -2..2"):
        GemmJob(w2, torch.zeros(1, 2, dtype=torch.int64), torch.tensor([[2], [-2]]), 1, 0)
    with pytest.raises(ValueError, match="x has 3 features, the layer takes 4"):
        linear(torch.zeros(2, 3), torch.nn.Linear(4, 2), config=CONFIG, out_scale=1.0)


def test_output_stationary_limits():
    os = GemmConfig(rows=4, cols=4, dataflow="os", max_k=64, acc_bits=24, a_buffer_depth=8,
                    w_buffer_depth=6, acc_buffer_depth=16)
    zeros = torch.zeros
    with pytest.raises(ValueError, match=r"K = 7 exceeds the engine's w_buffer_depth = 6"):
        GemmJob(os, zeros(1, 7, dtype=torch.int64), zeros(7, 1, dtype=torch.int64), 1, 0)
    with pytest.raises(ValueError, match=r"ceil\(M / rows\) \* K = 15 exceeds the engine's "
                                         r"a_buffer_depth = 8"):
        GemmJob(os, zeros(9, 5, dtype=torch.int64), zeros(5, 1, dtype=torch.int64), 1, 0)
    # M beyond acc_buffer_depth is fine: the array holds the sums.
    assert GemmJob(os, zeros(30, 1, dtype=torch.int64), zeros(1, 1, dtype=torch.int64), 1,
                   0).shape == (30, 1, 1)
