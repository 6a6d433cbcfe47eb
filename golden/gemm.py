"""Golden model of the tensor engines: exact integer matmul, requantization, quantizers.

Integer results are exact ``torch.int64`` (no float on the integer path); the quantizers are the
float-to-integer bridge shared with ``sw/``. Nothing here comes from ``hw/`` but the configuration
(DESIGN.md section 1).
"""

import torch

from hw.gemm.config import WEIGHT_BITS, weight_range
from hw.lib.config import check_bool, check_choice


__all__ = ["matmul_int", "requantize", "quantize_weights", "quantize_activations",
           "dequantize", "REQUANT_ROUNDING"]


#: Rounding modes of :func:`requantize`: to nearest, ties away from zero or to even.
REQUANT_ROUNDING = ("half_away", "half_even")

_INT8 = (-128, 127)


def _int_tensor(func, name, x):
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x)
    if x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool:
        raise TypeError(f"{func}: {name} must be an integer tensor, not dtype {x.dtype}")
    return x.to(torch.int64)


def matmul_int(a, w):
    """Exact ``a @ w`` of integer matrices.

    Parameters
    ----------
    a : integer tensor, (M, K)
    w : integer tensor, (K, N)

    Returns
    -------
    torch.Tensor
        ``torch.int64`` (M, N). Exact as long as every sum fits int64, which it does by far for
        int8 operands (``|sum| <= K * 2**14``).
    """
    func = "golden.gemm.matmul_int"
    a = _int_tensor(func, "a", a)
    w = _int_tensor(func, "w", w)
    if a.dim() != 2 or w.dim() != 2 or a.shape[1] != w.shape[0]:
        raise ValueError(f"{func}: expected (M, K) @ (K, N), got {tuple(a.shape)} @ "
                         f"{tuple(w.shape)}")
    # torch multiplies integer tensors without BLAS, in exact int64 arithmetic.
    return a @ w


def requantize(acc, multiplier, shift, *, rounding="half_away", relu=False):
    """Scale integer accumulators to int8: ``sat8(relu(round(acc * multiplier / 2**shift)))``.

    Parameters
    ----------
    acc : integer tensor, (..., N)
        Accumulators.
    multiplier, shift : integer tensor (N,) or int
        Per-output-channel (last axis) scale ``multiplier / 2**shift``; ``shift`` in 0..62,
        ``|acc * multiplier| < 2**62``.
    rounding : {"half_away", "half_even"}
        How a quotient exactly halfway between two integers rounds.
    relu : bool
        Clamp negative results to 0 (before saturation; the order does not matter).

    Returns
    -------
    torch.Tensor
        ``torch.int64`` values in -128..127, shaped like ``acc``.
    """
    func = "golden.gemm.requantize"
    check_choice("rounding", rounding, REQUANT_ROUNDING, owner=func)
    check_bool("relu", relu, owner=func)
    acc = _int_tensor(func, "acc", acc)
    multiplier = _int_tensor(func, "multiplier", multiplier)
    shift = _int_tensor(func, "shift", shift)
    if shift.numel() and (int(shift.min()) < 0 or int(shift.max()) > 62):
        raise ValueError(f"{func}: shift must be within 0..62, got "
                         f"{int(shift.min())}..{int(shift.max())}")
    bound = acc.abs().max() if acc.numel() else torch.tensor(0)
    if multiplier.numel() and int(bound) * int(multiplier.abs().max()) >= 1 << 62:
        raise ValueError(f"{func}: |acc * multiplier| must stay below 2**62")
    x = acc * multiplier
    divisor = torch.ones_like(shift) << shift
    q = torch.div(x, divisor, rounding_mode="floor")
    r = x - q * divisor                      # 0 <= r < divisor
    twice = 2 * r
    if rounding == "half_away":
        up = (twice > divisor) | ((twice == divisor) & (x >= 0))
    else:
        up = (twice > divisor) | ((twice == divisor) & (torch.remainder(q, 2) == 1))
    y = q + up.to(torch.int64)
    if relu:
        y = y.clamp(min=0)
    return y.clamp(*_INT8)


def _symmetric(x, qmax, qmin, dim):
    amax = x.abs().amax(dim=dim, keepdim=True) if dim is not None else x.abs().max()
    scale = torch.where(amax > 0, amax / qmax, torch.ones_like(amax))
    q = torch.round(x / scale).clamp(qmin, qmax).to(torch.int64)
    return q, scale


def _float_tensor(func, name, x):
    if not isinstance(x, torch.Tensor) or not x.dtype.is_floating_point:
        raise TypeError(f"{func}: {name} must be a floating-point tensor")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{func}: {name} contains NaN or infinities")
    return x.to(torch.float64)


def quantize_weights(w, bits):
    """Symmetric per-output-channel quantization of a (K, N) weight matrix.

    ``scale[n] = max_k |w[k, n]| / qmax`` with ``qmax = 2**(bits-1) - 1`` (127, 7, 1) and
    ``q = clamp(round_half_even(w / scale), -qmax, qmax)``: zero is exact and the range is
    symmetric, so the most negative code (-128, -8, -2) is never produced. For int2 this makes
    the weights ternary {-1, 0, 1}, the usual choice for 2-bit weights (an asymmetric {-2..1}
    grid would need a zero point or bias the sign); the hardware still accepts -2.

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        ``int64`` codes (K, N) and ``float64`` scales (N,); ``w ~= q * scale``. An all-zero
        column gets scale 1.
    """
    func = "golden.gemm.quantize_weights"
    check_choice("bits", bits, WEIGHT_BITS, owner=func)
    w = _float_tensor(func, "w", w)
    if w.dim() != 2:
        raise ValueError(f"{func}: w must be a (K, N) matrix, got shape {tuple(w.shape)}")
    qmax = weight_range(bits)[1]
    q, scale = _symmetric(w, qmax, -qmax, dim=0)
    return q, scale.reshape(-1)


def quantize_activations(x, bits=8):
    """Symmetric per-tensor quantization of activations to int8: ``scale = max|x| / 127``,
    ``q = clamp(round_half_even(x / scale), -127, 127)``.

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        ``int64`` codes shaped like ``x`` and a 0-dimensional ``float64`` scale.
    """
    func = "golden.gemm.quantize_activations"
    check_choice("bits", bits, (8,), owner=func)
    x = _float_tensor(func, "x", x)
    qmax = weight_range(bits)[1]
    return _symmetric(x, qmax, -qmax, dim=None)


def dequantize(q, scale):
    """``q * scale`` in float64 (``scale`` broadcasts, e.g. per channel on the last axis)."""
    return _int_tensor("golden.gemm.dequantize", "q", q).to(torch.float64) * scale
