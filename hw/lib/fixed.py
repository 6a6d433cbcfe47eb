"""Fixed-point arithmetic for Amaranth 0.5 gateware.

Amaranth 0.5 has no fixed-point type (RFC 41 is not implemented yet), so a fixed-point number is
carried here as a plain :class:`~amaranth.hdl.Value` holding the raw integer, next to the
:class:`~hw.lib.config.QFormat` that gives its meaning: raw ``n`` stands for ``n / 2**f_bits``.
Keeping the format a Python-side object rather than a ``ShapeCastable`` means a later migration to
RFC 41 only has to swap these helpers, not every port.

Every function returns a combinational expression; :class:`Requantizer` adds the optional pipeline
register. ``golden/fixed.py`` is the bit-exact integer model these must match.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Value, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .config import OVERFLOW_MODES, ROUNDING_MODES, QFormat, check_choice


__all__ = ["fixed_shape", "requantize", "fixed_mul", "fixed_add", "Requantizer"]


def _check_format(name, fmt, owner):
    if not isinstance(fmt, QFormat):
        raise TypeError(f"{owner}.{name} must be a QFormat (e.g. SQ(1, 7)), not {fmt!r}")
    return fmt


def fixed_shape(fmt):
    """Amaranth shape of the raw integer of ``fmt``.

    Returns
    -------
    :class:`~amaranth.hdl.Shape`
        ``signed(fmt.width)`` or ``unsigned(fmt.width)``.
    """
    _check_format("fmt", fmt, "fixed_shape")
    return signed(fmt.width) if fmt.signed else unsigned(fmt.width)


def _fit(value, shape):
    """``value`` resized to ``shape``: low bits kept, or extended according to its own sign.

    The result equals ``value`` whenever ``value`` is representable in ``shape``.
    """
    shape = Shape.cast(shape)
    value = Value.cast(value)
    if len(value) >= shape.width:
        bits = value[:shape.width]
    elif value.shape().signed:
        bits = Cat(value, value[-1].replicate(shape.width - len(value)))
    else:
        bits = Cat(value, Const(0, shape.width - len(value)))
    return bits.as_signed() if shape.signed else bits.as_unsigned()


def _as_raw(value, fmt, name, owner):
    value = Value.cast(value)
    if len(value) > fmt.width:
        raise ValueError(f"{owner}.{name} is {len(value)} bits wide, wider than its format {fmt} "
                         f"({fmt.width} bits)")
    # A narrower value (e.g. a small constant) keeps its numeric value; an equally wide one is
    # reinterpreted, so that an unsigned Signal may carry a signed format's bits.
    return _fit(value, fixed_shape(fmt))


def _round_bias(shift, rounding):
    """Constant part of what is added before dropping ``shift`` bits (see :func:`requantize`)."""
    half = 1 << (shift - 1)
    return {"trunc": 0, "half_up": half, "half_away": half - 1, "half_even": half - 1}[rounding]


def _round_int(x, shift, rounding):
    # The hardware formula on Python ints, used only to bound the range of the rounded value.
    if shift <= 0:
        return x << -shift
    carry = {"trunc": 0, "half_up": 0, "half_away": int(x >= 0),
             "half_even": (x >> shift) & 1}[rounding]
    return (x + _round_bias(shift, rounding) + carry) >> shift


def requantize(value, src, dst, *, rounding="trunc", overflow="saturate"):
    """Convert a raw fixed-point value from format ``src`` to format ``dst``.

    When ``dst`` has at least as many fraction bits as ``src`` the value is shifted left, exactly;
    otherwise ``src.f_bits - dst.f_bits`` bits are dropped with ``rounding``. The result is then
    brought into the range of ``dst`` with ``overflow``. Signed and unsigned formats convert both
    ways (a negative value saturates to 0 in an unsigned format).

    Rounding costs one adder and no comparator: a constant and a carry-in are added before the
    arithmetic shift (``half_up`` adds half, ``half_away`` adds half minus the sign bit,
    ``half_even`` adds half minus one plus the lowest kept bit). Intermediate values follow
    Amaranth's full-precision arithmetic, so nothing wraps before the final overflow step, which
    compares against ``dst``'s bounds only where the rounded value can actually exceed them.

    Parameters
    ----------
    value : value-like
        Raw integer in ``src``, at most ``src.width`` bits wide. A value exactly that wide is
        reinterpreted with ``src``'s signedness; a narrower one keeps its numeric value.
    src, dst : QFormat
        Source and destination formats.
    rounding : str
        One of :data:`~hw.lib.config.ROUNDING_MODES`.
    overflow : str
        One of :data:`~hw.lib.config.OVERFLOW_MODES`.

    Returns
    -------
    :class:`~amaranth.hdl.Value`, :py:`fixed_shape(dst)`
        Combinational expression of the raw result.

    Raises
    ------
    TypeError
        If ``src`` or ``dst`` is not a :class:`~hw.lib.config.QFormat`.
    ValueError
        If ``rounding`` or ``overflow`` is not a known mode, or ``value`` is wider than ``src``.
    """
    _check_format("src", src, "requantize")
    _check_format("dst", dst, "requantize")
    check_choice("rounding", rounding, ROUNDING_MODES, owner="requantize")
    check_choice("overflow", overflow, OVERFLOW_MODES, owner="requantize")
    x = _as_raw(value, src, "value", "requantize")

    shift = src.f_bits - dst.f_bits
    if shift <= 0:
        rounded = x.shift_left(-shift)
    else:
        if rounding == "half_away":
            # half - 1 + (x >= 0) rather than half - sign: an addition only, so an unsigned x
            # never goes through Amaranth's signed subtraction.
            carry = ~x[-1] if src.signed else Const(1, 1)
        elif rounding == "half_even":
            # The lowest kept bit of the sign-extended x; beyond the width it is the sign itself.
            if shift < src.width:
                carry = x[shift]
            else:
                carry = x[-1] if src.signed else Const(0, 1)
        else:
            carry = None
        biased = x
        bias = _round_bias(shift, rounding)
        if bias:
            biased = biased + bias
        if carry is not None:
            biased = biased + carry
        rounded = biased.shift_right(shift)

    shape = fixed_shape(dst)
    if overflow == "wrap":
        return _fit(rounded, shape)

    # Rounding is monotonic, so the extremes of src bound the rounded value.
    lo = _round_int(src.min_int, shift, rounding)
    hi = _round_int(src.max_int, shift, rounding)
    result = _fit(rounded, shape)
    if hi > dst.max_int:
        result = Mux(rounded > dst.max_int, Const(dst.max_int, shape), result)
    if lo < dst.min_int:
        result = Mux(rounded < dst.min_int, Const(dst.min_int, shape), result)
    return result


def fixed_mul(a, fa, b, fb):
    """Exact product of two fixed-point values.

    Parameters
    ----------
    a, b : value-like
        Raw integers in ``fa`` and ``fb`` (see :func:`requantize` for how they are read).
    fa, fb : QFormat
        Their formats; they may differ in signedness.

    Returns
    -------
    tuple of (:class:`~amaranth.hdl.Value`, QFormat)
        The raw product and its format: ``i_bits = fa.i_bits + fb.i_bits``,
        ``f_bits = fa.f_bits + fb.f_bits``, signed if either operand is. Its
        ``fa.width + fb.width`` bits hold every product, ``(-2**(n-1))**2`` and
        ``(-2**(n-1)) * (2**m - 1)`` included.
    """
    _check_format("fa", fa, "fixed_mul")
    _check_format("fb", fb, "fixed_mul")
    fmt = QFormat(fa.i_bits + fb.i_bits, fa.f_bits + fb.f_bits, fa.signed or fb.signed)
    x = _as_raw(a, fa, "a", "fixed_mul")
    y = _as_raw(b, fb, "b", "fixed_mul")
    # Amaranth multiplies mixed signedness correctly (the unsigned operand is zero-extended).
    return _fit(x * y, fixed_shape(fmt)), fmt


def fixed_add(a, fa, b, fb):
    """Exact sum of two fixed-point values.

    Fraction bits are aligned to the larger ``f_bits``. The result has one integer bit more than
    the wider operand, plus one for an unsigned operand added to a signed one (which needs a sign
    bit of its own in a signed result).

    Parameters
    ----------
    a, b : value-like
        Raw integers in ``fa`` and ``fb``.
    fa, fb : QFormat
        Their formats; they may differ in signedness.

    Returns
    -------
    tuple of (:class:`~amaranth.hdl.Value`, QFormat)
        The raw sum and its format.
    """
    _check_format("fa", fa, "fixed_add")
    _check_format("fb", fb, "fixed_add")
    is_signed = fa.signed or fb.signed
    f_bits = max(fa.f_bits, fb.f_bits)

    def integer_bits(f):
        return f.i_bits + (1 if is_signed and not f.signed else 0)

    fmt = QFormat(max(integer_bits(fa), integer_bits(fb)) + 1, f_bits, is_signed)
    x = _as_raw(a, fa, "a", "fixed_add").shift_left(f_bits - fa.f_bits)
    y = _as_raw(b, fb, "b", "fixed_add").shift_left(f_bits - fb.f_bits)
    return _fit(x + y, fixed_shape(fmt)), fmt


class Requantizer(wiring.Component):
    """Fixed-point format converter with optional output register.

    Converts every value on ``i`` from format ``src`` to format ``dst`` as :func:`requantize`
    does: exact left shift, or rounding of the dropped fraction bits, then wrap or saturation.

    Parameters
    ----------
    src : QFormat
        Format of the input.
    dst : QFormat
        Format of the output.
    rounding : str
        How dropped fraction bits round, one of :data:`~hw.lib.config.ROUNDING_MODES`.
    overflow : str
        How out-of-range values are handled, one of :data:`~hw.lib.config.OVERFLOW_MODES`.
    registered : bool
        If true, ``o`` is registered in the ``sync`` domain (latency 1 cycle, reset value 0);
        if false, ``o`` is a combinational function of ``i`` (latency 0).

    Interface attributes
    --------------------
    i : In(fixed_shape(src))
        Raw input value.
    o : Out(fixed_shape(dst))
        Raw converted value, :attr:`latency` cycles after ``i``.

    Raises
    ------
    TypeError
        If ``src`` or ``dst`` is not a :class:`~hw.lib.config.QFormat`, or ``registered`` is not a
        bool.
    ValueError
        If ``rounding`` or ``overflow`` is not a known mode.
    """

    def __init__(self, *, src, dst, rounding="trunc", overflow="saturate", registered=True):
        _check_format("src", src, "Requantizer")
        _check_format("dst", dst, "Requantizer")
        check_choice("rounding", rounding, ROUNDING_MODES, owner="Requantizer")
        check_choice("overflow", overflow, OVERFLOW_MODES, owner="Requantizer")
        if not isinstance(registered, bool):
            raise TypeError(f"Requantizer.registered must be a bool, not {registered!r}")
        self._src = src
        self._dst = dst
        self._rounding = rounding
        self._overflow = overflow
        self._registered = registered
        super().__init__({
            "i": In(fixed_shape(src)),
            "o": Out(fixed_shape(dst)),
        })

    @property
    def src(self):
        """Input format (:class:`~hw.lib.config.QFormat`)."""
        return self._src

    @property
    def dst(self):
        """Output format (:class:`~hw.lib.config.QFormat`)."""
        return self._dst

    @property
    def rounding(self):
        """Rounding mode (``str``)."""
        return self._rounding

    @property
    def overflow(self):
        """Overflow mode (``str``)."""
        return self._overflow

    @property
    def registered(self):
        """Whether the output is registered (``bool``)."""
        return self._registered

    @property
    def latency(self):
        """Cycles from ``i`` to ``o`` (``int``): 1 when registered, else 0."""
        return 1 if self._registered else 0

    def elaborate(self, platform):
        m = Module()
        result = requantize(self.i, self._src, self._dst,
                            rounding=self._rounding, overflow=self._overflow)
        if self._registered:
            m.d.sync += self.o.eq(result)
        else:
            m.d.comb += self.o.eq(result)
        return m
