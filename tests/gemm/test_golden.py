"""golden.gemm: hand-computed cases of the exact matmul, requantization and quantizers, and the
accuracy of the integer path against float."""

import pytest
import torch

from golden.gemm import dequantize, matmul_int, quantize_activations, quantize_weights, requantize


def test_matmul_int_hand_computed():
    a = torch.tensor([[1, 2], [-3, 4]])
    w = torch.tensor([[5, -6, 7], [8, 9, -10]])
    # [1*5+2*8, 1*-6+2*9, 1*7+2*-10], [-3*5+4*8, -3*-6+4*9, -3*7+4*-10]
    assert matmul_int(a, w).tolist() == [[21, 12, -13], [17, 54, -61]]
    assert matmul_int(a, w).dtype == torch.int64


def test_matmul_int_extremes_are_exact():
    k = 4096
    a = torch.full((1, k), -128, dtype=torch.int8)
    w = torch.full((k, 2), -128, dtype=torch.int8)
    assert matmul_int(a, w).tolist() == [[k * 16384] * 2]
    big = torch.tensor([[2 ** 40 + 1]])
    assert matmul_int(big, torch.tensor([[2 ** 20 + 3]])).item() == (2 ** 40 + 1) * (2 ** 20 + 3)


def test_matmul_int_errors():
    with pytest.raises(ValueError, match=r"\(2, 3\) @ \(2, 3\)"):
        matmul_int(torch.zeros(2, 3, dtype=torch.int64), torch.zeros(2, 3, dtype=torch.int64))
    with pytest.raises(TypeError, match="integer tensor"):
        matmul_int(torch.zeros(2, 2), torch.zeros(2, 2, dtype=torch.int64))


@pytest.mark.parametrize("rounding, expected", [
    # acc / 4 = 1.25, 1.5, 2.5, -1.5, -2.5, 1.75
    ("half_away", [1, 2, 3, -2, -3, 2]),
    ("half_even", [1, 2, 2, -2, -2, 2]),
])
def test_requantize_ties(rounding, expected):
    acc = torch.tensor([5, 6, 10, -6, -10, 7])
    assert requantize(acc, 1, 2, rounding=rounding).tolist() == expected


def test_requantize_per_channel_relu_saturation():
    acc = torch.tensor([[100, 100, -100], [1000, -1000, 7]])
    multiplier = torch.tensor([3, 1, 5])
    shift = torch.tensor([1, 0, 2])
    # 100*3/2 = 150 -> 127; 100; -100*5/4 = -125; 1500 -> 127; -1000 -> -128; 35/4 = 8.75 -> 9
    assert requantize(acc, multiplier, shift).tolist() == [[127, 100, -125], [127, -128, 9]]
    assert requantize(acc, multiplier, shift, relu=True).tolist() == [[127, 100, 0],
                                                                      [127, 0, 9]]
    assert requantize(torch.tensor([-129, 128]), 1, 0).tolist() == [-128, 127]


def test_requantize_errors():
    with pytest.raises(ValueError, match="rounding='trunc' is not valid"):
        requantize(torch.tensor([1]), 1, 0, rounding="trunc")
    with pytest.raises(ValueError, match="shift must be within 0..62"):
        requantize(torch.tensor([1]), 1, 63)
    with pytest.raises(ValueError, match="2\\*\\*62"):
        requantize(torch.tensor([2 ** 40]), 2 ** 30, 0)


@pytest.mark.parametrize("bits, qmax", [(8, 127), (4, 7), (2, 1)])
def test_quantize_weights_hand_computed(bits, qmax):
    w = torch.tensor([[1.0, -0.5, 0.0], [-2.0, 0.25, 0.0]], dtype=torch.float64)
    q, scale = quantize_weights(w, bits)
    assert scale.tolist() == [2.0 / qmax, 0.5 / qmax, 1.0]
    assert q[1, 0].item() == -qmax and q[0, 1].item() == -qmax
    assert q[:, 2].tolist() == [0, 0]
    assert int(q.min()) >= -qmax and int(q.max()) <= qmax
    # Half of the column maximum is qmax / 2: 63.5 and 3.5 round to even (64, 4), and for
    # int2 (ternary, -2 never produced) 0.5 rounds to 0.
    half = {8: 64, 4: 4, 2: 0}[bits]
    assert q.tolist() == [[half, -qmax, 0], [-qmax, half, 0]]


def test_quantize_activations_and_errors():
    x = torch.tensor([0.5, -1.0, 0.25])
    q, scale = quantize_activations(x)
    assert scale.item() == 1.0 / 127
    assert q.tolist() == [64, -127, 32]          # 63.5 -> 64 (ties to even), 31.75 -> 32
    with pytest.raises(ValueError, match="bits=3 is not valid"):
        quantize_weights(torch.ones(2, 2), 3)
    with pytest.raises(ValueError, match="NaN"):
        quantize_activations(torch.tensor([float("nan")]))
    with pytest.raises(TypeError, match="floating-point"):
        quantize_weights(torch.ones(2, 2, dtype=torch.int64), 8)


@pytest.mark.parametrize("bits, bound", [(8, 0.015), (4, 0.15), (2, 0.8)])
def test_integer_path_tracks_float(bits, bound):
    """Quantize, multiply exactly, dequantize: the relative error against the float matmul
    shrinks with the weight width (measured bounds with margin)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 64, generator=g, dtype=torch.float64)
    w = torch.randn(64, 32, generator=g, dtype=torch.float64)
    qx, sx = quantize_activations(x)
    qw, sw = quantize_weights(w, bits)
    approx = dequantize(matmul_int(qx, qw), sx * sw)
    reference = x @ w
    error = (approx - reference).norm() / reference.norm()
    assert error < bound
