"""Bit-exact integer model of fixed-point conversion (the mirror of ``hw/lib/fixed.py``).

Written independently of the gateware (DESIGN.md section 1: a golden model imports nothing from
``hw/`` but configuration modules): where the gateware adds a bias and shifts, this model takes a
floor quotient and compares the remainder against one half, so an error in either formulation
shows up as a mismatch.

Raw integers are ``torch.int64`` tensors (or Python ints); formats wider than 62 bits are refused,
which keeps every intermediate value below ``2**63``. Semantics of the modes are those of
:data:`hw.lib.config.ROUNDING_MODES` and :data:`hw.lib.config.OVERFLOW_MODES`.
"""

import torch

from hw.lib.config import OVERFLOW_MODES, ROUNDING_MODES, QFormat, check_choice


__all__ = ["MAX_WIDTH", "requantize", "quantize", "dequantize"]


#: Widest format these functions accept: raw values and their doubles stay within int64.
MAX_WIDTH = 62


def _check_format(func, name, fmt):
    if not isinstance(fmt, QFormat):
        raise TypeError(f"{func}: {name} must be a QFormat, not {fmt!r}")
    if fmt.width > MAX_WIDTH:
        raise ValueError(f"{func}: {name}={fmt} is {fmt.width} bits wide; the golden model "
                         f"supports at most {MAX_WIDTH} bits")


def _to_int_tensor(func, x):
    if isinstance(x, bool) or not isinstance(x, (int, torch.Tensor)):
        raise TypeError(f"{func}: expected a torch integer tensor or an int, not {type(x).__name__}")
    if isinstance(x, int):
        if not -(1 << 63) <= x < (1 << 63):
            raise ValueError(f"{func}: {x} does not fit in int64")
        return torch.tensor(x, dtype=torch.int64)
    if x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool:
        raise TypeError(f"{func}: expected an integer tensor, not dtype {x.dtype}")
    return x.to(torch.int64)


def _check_range(func, x, fmt):
    if x.numel() and (bool((x < fmt.min_int).any()) or bool((x > fmt.max_int).any())):
        raise ValueError(f"{func}: raw values must be within {fmt}'s range "
                         f"{fmt.min_int}..{fmt.max_int}, got {int(x.min())}..{int(x.max())}")


def _overflow(y, dst, overflow):
    """Bring integers ``y`` (|y| < 2**62) into ``dst``'s raw range."""
    if overflow == "saturate":
        return y.clamp(dst.min_int, dst.max_int)
    modulus = 1 << dst.width
    return torch.remainder(y - dst.min_int, modulus) + dst.min_int


def requantize(x, src, dst, rounding="trunc", overflow="saturate"):
    """Convert raw integers from format ``src`` to format ``dst``.

    ``src.f_bits - dst.f_bits`` fraction bits are dropped with ``rounding`` (when that is negative,
    the value is scaled up exactly), then the value is brought into ``dst``'s range with
    ``overflow``.

    Parameters
    ----------
    x : torch.Tensor or int
        Raw integers of ``src`` (any integer dtype; values must lie in ``src``'s raw range).
    src, dst : QFormat
        Formats, at most :data:`MAX_WIDTH` bits wide.
    rounding : str
        One of :data:`~hw.lib.config.ROUNDING_MODES`.
    overflow : str
        One of :data:`~hw.lib.config.OVERFLOW_MODES`.

    Returns
    -------
    torch.Tensor or int
        Raw integers of ``dst``: a ``torch.int64`` tensor of the shape of ``x``, or an int if ``x``
        is an int.

    Raises
    ------
    TypeError
        If ``x`` is not an integer tensor or int, or a format is not a QFormat.
    ValueError
        For an unknown mode, a format wider than :data:`MAX_WIDTH` bits, or ``x`` outside ``src``.
    """
    func = "golden.fixed.requantize"
    _check_format(func, "src", src)
    _check_format(func, "dst", dst)
    check_choice("rounding", rounding, ROUNDING_MODES, owner=func)
    check_choice("overflow", overflow, OVERFLOW_MODES, owner=func)
    as_int = isinstance(x, int) and not isinstance(x, bool)
    t = _to_int_tensor(func, x)
    _check_range(func, t, src)

    up = dst.f_bits - src.f_bits
    if up >= 0:
        if overflow == "saturate":
            # Clamp before scaling so the product never leaves int64: the bounds are the
            # smallest and largest x whose scaled value still fits dst.
            hi = dst.max_int >> up                    # floor(max / 2**up)
            lo = -((-dst.min_int) >> up)              # ceil(min / 2**up)
            scaled = t.clamp(lo, hi) * ((1 << up) if up < 63 else 0)
            y = torch.where(t > hi, dst.max_int, torch.where(t < lo, dst.min_int, scaled))
        else:
            # Only x mod 2**(width - up) survives the wrap.
            keep = dst.width - up
            if keep <= 0:
                y = torch.zeros_like(t)
            else:
                y = _overflow(torch.remainder(t, 1 << keep) * (1 << up), dst, "wrap")
    else:
        down = -up
        if down > src.width:
            # |x| <= 2**(width-1) < 2**(down-1): |x / 2**down| < 1/2 and no tie is possible.
            q = torch.where(t < 0, -1, 0) if rounding == "trunc" else torch.zeros_like(t)
        else:
            divisor = 1 << down
            half = divisor >> 1
            q = torch.div(t, divisor, rounding_mode="floor")
            r = t - q * divisor                       # 0 <= r < divisor
            if rounding == "trunc":
                up_one = torch.zeros_like(t, dtype=torch.bool)
            elif rounding == "half_up":
                up_one = r >= half
            elif rounding == "half_away":
                up_one = (r > half) | ((r == half) & (t >= 0))
            else:
                up_one = (r > half) | ((r == half) & (torch.remainder(q, 2) == 1))
            q = q + up_one.to(torch.int64)
        y = _overflow(q, dst, overflow)
    return int(y) if as_int else y


def quantize(x, fmt, rounding="half_even", overflow="saturate"):
    """Quantize real numbers to raw integers of ``fmt``, exactly.

    ``x * 2**fmt.f_bits`` is computed exactly (a power-of-two scaling) and rounded with
    ``rounding``, then brought into range with ``overflow``. The result is what an infinitely
    precise conversion of the floating-point input would give.

    Parameters
    ----------
    x : torch.Tensor or float
        A float64 or float32 tensor (float32 is widened exactly), or a Python float or int.
    fmt : QFormat
        Destination format, at most :data:`MAX_WIDTH` bits wide.
    rounding : str
        One of :data:`~hw.lib.config.ROUNDING_MODES` (default ``half_even``, as IEEE 754).
    overflow : str
        One of :data:`~hw.lib.config.OVERFLOW_MODES`. Infinities saturate to the bounds; they are
        refused with ``wrap``, where they have no meaning.

    Returns
    -------
    torch.Tensor
        ``torch.int64`` raw integers, of the shape of ``x`` (0-dimensional for a Python number).

    Raises
    ------
    ValueError
        If ``x`` contains NaN (message names ``quantize``), infinities with ``overflow="wrap"``,
        an unknown mode, or a format wider than :data:`MAX_WIDTH` bits.
    TypeError
        If ``x`` is not a floating-point tensor or a Python number.
    """
    func = "golden.fixed.quantize"
    _check_format(func, "fmt", fmt)
    check_choice("rounding", rounding, ROUNDING_MODES, owner=func)
    check_choice("overflow", overflow, OVERFLOW_MODES, owner=func)
    if isinstance(x, (float, int)) and not isinstance(x, bool):
        x = torch.tensor(float(x), dtype=torch.float64)
    elif isinstance(x, torch.Tensor) and x.dtype in (torch.float64, torch.float32,
                                                      torch.float16, torch.bfloat16):
        x = x.to(torch.float64)
    else:
        raise TypeError(f"{func}: expected a floating-point tensor or a float, not "
                        f"{getattr(x, 'dtype', type(x).__name__)}")
    if bool(torch.isnan(x).any()):
        raise ValueError(f"{func}: input contains NaN, which has no fixed-point value")
    finite = torch.isfinite(x)
    if overflow == "wrap" and not bool(finite.all()):
        raise ValueError(f"{func}: input contains infinities, which cannot wrap; "
                         f"use overflow='saturate'")

    # Scale by 2**f_bits exactly whatever the exponents: x = m * 2**e with 1/2 <= |m| < 1, so
    # v = x * 2**f_bits = m * 2**k. Only -1 <= k <= 62 is scaled in floating point (exact, and
    # |v| < 2**62 converts to int64); smaller k gives |v| < 1/4 and larger |v| >= 2**62.
    infinite = torch.isinf(x)
    m, e = torch.frexp(torch.where(infinite, 0.0, x))
    k = e.to(torch.int64) + fmt.f_bits
    tiny = k < -1
    huge = ((k > 62) & (m != 0)) | infinite
    negative = (m < 0) | (infinite & (x < 0))
    v = m * torch.exp2(k.clamp(-1, 62).to(torch.float64))
    # Stand-ins with the same rounding outcome as any |v| < 1/4 of that sign.
    v = torch.where(tiny, torch.where(negative, -0.125, 0.0), v)
    v = torch.where(huge, 0.0, v)

    q = torch.floor(v)
    frac = v - q                                  # exact, 0 <= frac < 1
    if rounding == "trunc":
        up_one = torch.zeros_like(v, dtype=torch.bool)
    elif rounding == "half_up":
        up_one = frac >= 0.5
    elif rounding == "half_away":
        up_one = (frac > 0.5) | ((frac == 0.5) & (v > 0))
    else:
        up_one = (frac > 0.5) | ((frac == 0.5) & (torch.remainder(q, 2.0) == 1.0))
    # |q| <= 2**62: an integer-valued float that converts to int64 exactly.
    y = (q + up_one.to(torch.float64)).to(torch.int64)

    if overflow == "saturate":
        y = torch.where(huge, torch.where(negative, fmt.min_int, fmt.max_int), y)
        return _overflow(y, fmt, "saturate")
    # A huge v is the integer n * 2**(k - 53) with |n| < 2**53 and k - 53 >= 10; only
    # n mod 2**(width - (k - 53)) survives the wrap, and nothing once k - 53 >= width.
    n = torch.where(huge, m * 2.0 ** 53, 0.0).to(torch.int64)
    ones = torch.ones_like(n)
    shift = (k - 53).clamp(0, fmt.width)
    low = torch.remainder(n, ones << (fmt.width - shift)) << shift
    y = torch.where(huge, low, y)
    return _overflow(y, fmt, "wrap")


def dequantize(raw, fmt):
    """Real values of raw integers of ``fmt``.

    Parameters
    ----------
    raw : torch.Tensor or int
        Raw integers of ``fmt`` (within its range).
    fmt : QFormat
        Their format, at most :data:`MAX_WIDTH` bits wide.

    Returns
    -------
    torch.Tensor
        ``torch.float64`` values ``raw / 2**fmt.f_bits``; exact for formats of up to 53 bits,
        correctly rounded beyond.
    """
    func = "golden.fixed.dequantize"
    _check_format(func, "fmt", fmt)
    t = _to_int_tensor(func, raw)
    _check_range(func, t, fmt)
    return torch.ldexp(t.to(torch.float64), torch.tensor(float(-fmt.f_bits), dtype=torch.float64))
