# amaranth: UnusedElaboratable=no
"""Fixed-point arithmetic: golden model by hand, gateware against golden model, bit for bit.

The first line turns off Amaranth's UnusedElaboratable warning for components created in this file:
several are built only to see their constructor reject a parameter.
"""

import math
from fractions import Fraction

import pytest
import torch
from amaranth.back import rtlil
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.sim import Simulator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from golden import fixed as golden
from hw.lib.config import OVERFLOW_MODES, ROUNDING_MODES, QFormat, SQ, UQ
from hw.lib.fixed import Requantizer, fixed_add, fixed_mul, fixed_shape, requantize


# ---------------------------------------------------------------------------------------------
# Helpers


def all_raw(fmt):
    return list(range(fmt.min_int, fmt.max_int + 1))


@st.composite
def formats(draw, max_width, i_bits=st.integers(-4, 14)):
    is_signed = draw(st.booleans())
    width = draw(st.integers(2 if is_signed else 1, max_width))
    i = draw(i_bits)
    return QFormat(i, width - i, is_signed)


def real(raw, fmt):
    return Fraction(raw) / Fraction(2) ** fmt.f_bits


def simulate_requantizer(src, dst, rounding, overflow, values):
    """Outputs of one combinational Requantizer for every input of ``values``, in one run."""
    dut = Requantizer(src=src, dst=dst, rounding=rounding, overflow=overflow, registered=False)
    sim = Simulator(dut)
    outputs = []

    async def bench(ctx):
        for value in values:
            ctx.set(dut.i, value)
            outputs.append(ctx.get(dut.o))

    sim.add_testbench(bench)
    sim.run()
    return outputs


def simulate_binary(op, fa, fb, pairs):
    """Results and format of ``op(a, fa, b, fb)`` (fixed_mul or fixed_add) for each pair."""
    a = Signal(fixed_shape(fa))
    b = Signal(fixed_shape(fb))
    expr, fmt = op(a, fa, b, fb)
    assert expr.shape() == fixed_shape(fmt)
    out = Signal(fixed_shape(fmt))
    m = Module()
    m.d.comb += out.eq(expr)
    sim = Simulator(m)
    results = []

    async def bench(ctx):
        for x, y in pairs:
            ctx.set(a, x)
            ctx.set(b, y)
            results.append(ctx.get(out))

    sim.add_testbench(bench)
    sim.run()
    return results, fmt


def exact_requantize(x, src, dst, rounding, overflow):
    """Reference of the reference: rational arithmetic straight from the mode definitions."""
    return exact_round(Fraction(x) * Fraction(2) ** (dst.f_bits - src.f_bits), dst, rounding,
                       overflow)


def exact_round(v, dst, rounding, overflow):
    floor = math.floor(v)
    frac = v - floor
    half = Fraction(1, 2)
    if rounding == "trunc":
        q = floor
    elif rounding == "half_up":
        q = floor + (frac >= half)
    elif rounding == "half_away":
        q = floor + (frac > half or (frac == half and v > 0))
    else:
        q = floor + (frac > half or (frac == half and floor % 2 == 1))
    if overflow == "saturate":
        return min(max(q, dst.min_int), dst.max_int)
    return (q - dst.min_int) % (1 << dst.width) + dst.min_int


# ---------------------------------------------------------------------------------------------
# Golden model, hand-computed


# Raw values of SQ(8, 1) (halves) requantized to SQ(8, 0).
HALVES = [5, -5, 7, -7, 3, -3, 1, -1, 4, -4]          # 2.5 -2.5 3.5 -3.5 1.5 -1.5 .5 -.5 2 -2
ROUNDED = {
    "trunc":     [2, -3, 3, -4, 1, -2, 0, -1, 2, -2],
    "half_up":   [3, -2, 4, -3, 2, -1, 1,  0, 2, -2],
    "half_away": [3, -3, 4, -4, 2, -2, 1, -1, 2, -2],
    "half_even": [2, -2, 4, -4, 2, -2, 0,  0, 2, -2],
}


@pytest.mark.parametrize("rounding", ROUNDING_MODES)
def test_golden_requantize_ties(rounding):
    got = golden.requantize(torch.tensor(HALVES), SQ(8, 1), SQ(8, 0), rounding)
    assert got.dtype == torch.int64
    assert got.tolist() == ROUNDED[rounding]


@pytest.mark.parametrize("rounding, expected", [
    # SQ(8, 2) quarters to SQ(8, 0): -2.75 -2.25 2.25 2.75 and the ties -2.5 2.5
    ("trunc",     [-3, -3, 2, 2, -3, 2]),
    ("half_up",   [-3, -2, 2, 3, -2, 3]),
    ("half_away", [-3, -2, 2, 3, -3, 3]),
    ("half_even", [-3, -2, 2, 3, -2, 2]),
])
def test_golden_requantize_two_bits(rounding, expected):
    got = golden.requantize(torch.tensor([-11, -9, 9, 11, -10, 10]), SQ(8, 2), SQ(8, 0), rounding)
    assert got.tolist() == expected


@pytest.mark.parametrize("rounding", ROUNDING_MODES)
def test_golden_quantize_ties(rounding):
    reals = torch.tensor([r / 2 for r in HALVES], dtype=torch.float64)
    assert golden.quantize(reals, SQ(8, 0), rounding).tolist() == ROUNDED[rounding]
    # float32 input and Python floats give the same answer
    assert golden.quantize(reals.float(), SQ(8, 0), rounding).tolist() == ROUNDED[rounding]
    assert golden.quantize(-2.5, SQ(8, 0), rounding).item() == ROUNDED[rounding][1]


def test_golden_quantize_examples():
    # 0.3 in Q1.7: 0.3 * 128 = 38.4 -> 38
    assert golden.quantize(0.3, SQ(1, 7)).item() == 38
    # 1.0 is just out of Q1.7's range [-1, 127/128]
    assert golden.quantize(1.0, SQ(1, 7)).item() == 127
    assert golden.quantize(1.0, SQ(1, 7), overflow="wrap").item() == -128
    assert golden.quantize(-1.0, SQ(1, 7)).item() == -128
    # negative f_bits: multiples of 4
    assert golden.quantize(torch.tensor([5.9, 6.0, 10.0]), SQ(8, -2)).tolist() == [1, 2, 2]
    # infinities saturate; tiny values round to zero (or -1 truncated)
    assert golden.quantize(torch.tensor([math.inf, -math.inf]), UQ(4, 4)).tolist() == [255, 0]
    assert golden.quantize(-1e-300, SQ(4, 4), "half_even").item() == 0
    assert golden.quantize(-1e-300, SQ(4, 4), "trunc").item() == -1


def test_golden_quantize_nan_and_inf_errors():
    with pytest.raises(ValueError, match=r"quantize: input contains NaN"):
        golden.quantize(torch.tensor([0.0, math.nan], dtype=torch.float64), SQ(4, 4))
    with pytest.raises(ValueError, match=r"quantize: .*infinities"):
        golden.quantize(math.inf, SQ(4, 4), overflow="wrap")
    with pytest.raises(TypeError, match=r"quantize: expected a floating-point"):
        golden.quantize(torch.tensor([1, 2]), SQ(4, 4))


def test_golden_dequantize():
    got = golden.dequantize(torch.tensor([-128, -1, 0, 127]), SQ(1, 7))
    assert got.dtype == torch.float64
    assert got.tolist() == [-1.0, -1 / 128, 0.0, 127 / 128]
    assert golden.dequantize(torch.tensor([3]), UQ(10, -2)).tolist() == [12.0]
    # quantize inverts dequantize on every raw value
    raw = torch.tensor(all_raw(SQ(3, 5)))
    assert torch.equal(golden.quantize(golden.dequantize(raw, SQ(3, 5)), SQ(3, 5)), raw)


@pytest.mark.parametrize("overflow, expected", [
    ("saturate", [7, -8, 7, -8, 3]),
    ("wrap",     [4, -4, -8, 7, 3]),
])
def test_golden_overflow_both_ends(overflow, expected):
    # SQ(8, 0) -> SQ(4, 0): 100 = 6*16 + 4, -100 = -7*16 + 12, 8 -> -8, -9 -> 7
    got = golden.requantize(torch.tensor([100, -100, 8, -9, 3]), SQ(8, 0), SQ(4, 0), "trunc",
                            overflow)
    assert got.tolist() == expected


def test_golden_signedness_conversions():
    assert golden.requantize(torch.tensor([-3, -128, 0, 5]), SQ(8, 0), UQ(8, 0)).tolist() \
        == [0, 0, 0, 5]
    assert golden.requantize(torch.tensor([-3, -128]), SQ(8, 0), UQ(8, 0),
                             overflow="wrap").tolist() == [253, 128]
    assert golden.requantize(200, UQ(8, 0), SQ(8, 0)) == 127
    assert golden.requantize(200, UQ(8, 0), SQ(8, 0), overflow="wrap") == -56
    # -0.25 rounds to 0 before the unsigned clamp; -0.75 to -1 and clamps to 0
    assert golden.requantize(torch.tensor([-1, -3]), SQ(4, 2), UQ(4, 0), "half_even").tolist() \
        == [0, 0]


def test_golden_shift_left_and_ints():
    assert golden.requantize(-3, SQ(4, 0), SQ(8, 3)) == -24
    # SQ(3, 3) holds -32..31: 7 -> 56 = 64 - 8 and -8 -> -64 = -64 + 0
    assert golden.requantize(torch.tensor([7, -8]), SQ(4, 0), SQ(3, 3)).tolist() == [31, -32]
    assert golden.requantize(torch.tensor([7, -8]), SQ(4, 0), SQ(3, 3),
                             overflow="wrap").tolist() == [-8, 0]
    assert isinstance(golden.requantize(3, SQ(4, 0), SQ(4, 0)), int)


def test_golden_width_limit_and_range_errors():
    with pytest.raises(ValueError, match=r"requantize: dst=SQ\(63, 0\) is 63 bits wide"):
        golden.requantize(0, SQ(8, 0), SQ(63, 0))
    with pytest.raises(ValueError, match=r"quantize: fmt=UQ\(60, 3\)"):
        golden.quantize(0.0, UQ(60, 3))
    golden.requantize(0, SQ(62, 0), UQ(0, 62))             # 62 bits is fine
    with pytest.raises(ValueError, match=r"requantize: raw values must be within SQ\(4, 0\)"):
        golden.requantize(torch.tensor([8]), SQ(4, 0), SQ(8, 0))
    with pytest.raises(ValueError, match=r"rounding='nearest' is not valid"):
        golden.requantize(0, SQ(4, 0), SQ(4, 0), rounding="nearest")
    with pytest.raises(TypeError, match=r"src must be a QFormat"):
        golden.requantize(0, "SQ(4, 0)", SQ(4, 0))
    with pytest.raises(TypeError, match=r"integer tensor"):
        golden.requantize(torch.tensor([0.5]), SQ(4, 0), SQ(4, 0))


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_golden_requantize_matches_rationals(data):
    src, dst = data.draw(formats(62)), data.draw(formats(62))
    rounding = data.draw(st.sampled_from(ROUNDING_MODES))
    overflow = data.draw(st.sampled_from(OVERFLOW_MODES))
    xs = data.draw(st.lists(st.integers(src.min_int, src.max_int), min_size=1, max_size=8))
    xs += [src.min_int, src.max_int]
    got = golden.requantize(torch.tensor(xs), src, dst, rounding, overflow).tolist()
    assert got == [exact_requantize(x, src, dst, rounding, overflow) for x in xs]


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_golden_quantize_matches_rationals(data):
    fmt = data.draw(formats(62, i_bits=st.integers(-1100, 1100)))
    rounding = data.draw(st.sampled_from(ROUNDING_MODES))
    overflow = data.draw(st.sampled_from(OVERFLOW_MODES))
    xs = data.draw(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1,
                            max_size=8))
    got = golden.quantize(torch.tensor(xs, dtype=torch.float64), fmt, rounding, overflow).tolist()
    assert got == [exact_round(Fraction(x) * Fraction(2) ** fmt.f_bits, fmt, rounding, overflow)
                   for x in xs]


# ---------------------------------------------------------------------------------------------
# Gateware against golden model


COMBOS = [
    pytest.param(SQ(4, 4), SQ(4, 4), id="identity"),
    pytest.param(SQ(4, 2), SQ(6, 5), id="shift-left-3"),
    pytest.param(SQ(6, 2), SQ(2, 4), id="shift-left-narrowing"),
    pytest.param(UQ(6, 2), SQ(4, 4), id="unsigned-to-signed-left"),
    pytest.param(SQ(5, 5), SQ(5, 4), id="shift-right-1"),
    pytest.param(SQ(6, 4), SQ(6, -2), id="shift-right-6"),
    pytest.param(SQ(2, 6), SQ(8, -2), id="shift-right-width"),
    pytest.param(SQ(3, 5), SQ(8, -6), id="shift-right-beyond-width"),
    pytest.param(UQ(3, 5), UQ(8, -6), id="unsigned-beyond-width"),
    pytest.param(SQ(5, 5), UQ(3, 3), id="signed-to-unsigned"),
    pytest.param(UQ(8, 2), SQ(5, 0), id="unsigned-to-signed-right"),
    pytest.param(SQ(6, 4), SQ(3, 2), id="narrowing"),
    pytest.param(UQ(6, 4), UQ(3, 1), id="unsigned-narrowing"),
    pytest.param(UQ(-2, 8), SQ(1, 3), id="negative-i-bits"),
    pytest.param(SQ(2, 0), UQ(1, 0), id="tiny"),
]


@pytest.mark.parametrize("src, dst", COMBOS)
def test_requantizer_exhaustive(src, dst):
    values = all_raw(src)
    for rounding in ROUNDING_MODES:
        for overflow in OVERFLOW_MODES:
            got = simulate_requantizer(src, dst, rounding, overflow, values)
            expected = golden.requantize(torch.tensor(values), src, dst, rounding, overflow)
            assert got == expected.tolist(), (src, dst, rounding, overflow)


@pytest.mark.parametrize("src, dst, rounding, overflow", [
    (SQ(24, 24), UQ(20, 10), "half_even", "saturate"),
    (UQ(30, 10), SQ(8, 8), "half_away", "wrap"),
    (SQ(16, 40), SQ(60, 2), "half_up", "saturate"),
])
def test_requantizer_wide(src, dst, rounding, overflow):
    gen = torch.Generator().manual_seed(7)
    values = [src.min_int, src.min_int + 1, 0, 1, src.max_int - 1, src.max_int]
    values += [-1] if src.signed else []
    values += torch.randint(src.min_int, src.max_int, (300,), generator=gen).tolist()
    got = simulate_requantizer(src, dst, rounding, overflow, values)
    assert got == golden.requantize(torch.tensor(values), src, dst, rounding, overflow).tolist()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(src=formats(10), dst=formats(10), rounding=st.sampled_from(ROUNDING_MODES),
       overflow=st.sampled_from(OVERFLOW_MODES))
def test_requantizer_random_formats(src, dst, rounding, overflow):
    values = all_raw(src)
    got = simulate_requantizer(src, dst, rounding, overflow, values)
    assert got == golden.requantize(torch.tensor(values), src, dst, rounding, overflow).tolist()


def test_requantizer_registered_latency():
    src, dst = SQ(4, 4), SQ(3, 1)
    dut = Requantizer(src=src, dst=dst, rounding="half_even")
    assert dut.latency == 1
    values = all_raw(src)
    expected = golden.requantize(torch.tensor(values), src, dst, "half_even").tolist()
    sim = Simulator(dut)
    sim.add_clock(1e-6)

    async def bench(ctx):
        assert ctx.get(dut.o) == 0
        for value, want in zip(values, expected):
            before = ctx.get(dut.o)
            ctx.set(dut.i, value)
            assert ctx.get(dut.o) == before         # nothing combinational from i to o
            await ctx.tick()
            assert ctx.get(dut.o) == want

    sim.add_testbench(bench)
    sim.run()


def test_requantize_expression_shape_and_constants():
    assert fixed_shape(SQ(1, 7)) == signed(8)
    assert fixed_shape(UQ(0, 8)) == unsigned(8)
    expr = requantize(Signal(signed(8)), SQ(1, 7), UQ(4, 0), rounding="half_up")
    assert expr.shape() == unsigned(4)
    # a narrow constant keeps its value: -3 in SQ(8, 0) -> SQ(8, 2) is -12
    m = Module()
    out = Signal(signed(10))
    m.d.comb += out.eq(requantize(-3, SQ(8, 0), SQ(8, 2)))
    sim = Simulator(m)
    seen = []

    async def bench(ctx):
        seen.append(ctx.get(out))

    sim.add_testbench(bench)
    sim.run()
    assert seen == [-12]


def test_requantizer_elaborates_to_rtlil():
    for registered in (False, True):
        dut = Requantizer(src=SQ(3, 5), dst=UQ(2, -1), rounding="half_even", registered=registered)
        assert "module" in rtlil.convert(dut, name="rq")


# ---------------------------------------------------------------------------------------------
# fixed_mul and fixed_add


PAIRS_OF_FORMATS = [
    pytest.param(SQ(2, 2), SQ(1, 3), id="signed-signed"),
    pytest.param(UQ(2, 2), UQ(3, 1), id="unsigned-unsigned"),
    pytest.param(SQ(2, 2), UQ(3, 1), id="signed-unsigned"),
    pytest.param(UQ(1, 3), SQ(3, 1), id="unsigned-signed"),
    pytest.param(SQ(-1, 5), UQ(4, -2), id="odd-bits"),
]


@pytest.mark.parametrize("fa, fb", PAIRS_OF_FORMATS)
def test_fixed_mul_exhaustive(fa, fb):
    pairs = [(x, y) for x in all_raw(fa) for y in all_raw(fb)]
    got, fmt = simulate_binary(fixed_mul, fa, fb, pairs)
    assert fmt == QFormat(fa.i_bits + fb.i_bits, fa.f_bits + fb.f_bits, fa.signed or fb.signed)
    assert got == [x * y for x, y in pairs]


@pytest.mark.parametrize("fa, fb", [
    (SQ(8, 8), SQ(8, 8)), (SQ(1, 17), UQ(0, 18)), (UQ(9, 0), SQ(9, 0)), (UQ(16, 0), UQ(2, 14)),
])
def test_fixed_mul_extremes(fa, fb):
    edge_a = sorted({fa.min_int, fa.min_int + 1, -1 if fa.signed else 0, 0, 1, fa.max_int})
    edge_b = sorted({fb.min_int, fb.min_int + 1, -1 if fb.signed else 0, 0, 1, fb.max_int})
    pairs = [(x, y) for x in edge_a for y in edge_b]
    got, fmt = simulate_binary(fixed_mul, fa, fb, pairs)
    assert got == [x * y for x, y in pairs]
    assert fmt.width == fa.width + fb.width
    # real values multiply exactly
    for (x, y), p in zip(pairs, got):
        assert real(p, fmt) == real(x, fa) * real(y, fb)


@pytest.mark.parametrize("fa, fb", PAIRS_OF_FORMATS + [
    pytest.param(SQ(8, 0), SQ(1, 1), id="far-apart"),
    pytest.param(UQ(6, 0), SQ(2, 2), id="wide-unsigned-narrow-signed"),
])
def test_fixed_add_exhaustive(fa, fb):
    pairs = [(x, y) for x in all_raw(fa) for y in all_raw(fb)]
    got, fmt = simulate_binary(fixed_add, fa, fb, pairs)
    assert fmt.f_bits == max(fa.f_bits, fb.f_bits)
    assert fmt.signed == (fa.signed or fb.signed)
    for (x, y), s in zip(pairs, got):
        assert real(s, fmt) == real(x, fa) + real(y, fb)


def test_fixed_add_formats():
    assert fixed_add(Signal(8), UQ(8, 0), Signal(8), UQ(8, 0))[1] == UQ(9, 0)
    assert fixed_add(Signal(signed(8)), SQ(1, 7), Signal(signed(8)), SQ(1, 7))[1] == SQ(2, 7)
    # an unsigned operand needs a sign bit of its own in a signed sum
    assert fixed_add(Signal(4), UQ(4, 0), Signal(signed(4)), SQ(4, 0))[1] == SQ(6, 0)


# ---------------------------------------------------------------------------------------------
# Errors


def test_requantizer_parameter_errors():
    ok = dict(src=SQ(4, 4), dst=SQ(4, 4))
    with pytest.raises(ValueError, match=r"Requantizer\.rounding='nearest' is not valid"):
        Requantizer(**ok, rounding="nearest")
    with pytest.raises(ValueError, match=r"Requantizer\.overflow='clamp' is not valid"):
        Requantizer(**ok, overflow="clamp")
    with pytest.raises(TypeError, match=r"Requantizer\.src must be a QFormat"):
        Requantizer(src=8, dst=SQ(4, 4))
    with pytest.raises(TypeError, match=r"Requantizer\.dst must be a QFormat"):
        Requantizer(src=SQ(4, 4), dst="SQ(4, 4)")
    with pytest.raises(TypeError, match=r"Requantizer\.registered must be a bool"):
        Requantizer(**ok, registered=1)
    with pytest.raises(TypeError):
        Requantizer(SQ(4, 4), SQ(4, 4))                     # keyword-only


def test_requantizer_properties_read_only():
    dut = Requantizer(src=SQ(4, 4), dst=UQ(2, 2), rounding="half_away", overflow="wrap",
                      registered=False)
    assert (dut.src, dut.dst, dut.rounding, dut.overflow, dut.registered, dut.latency) == \
        (SQ(4, 4), UQ(2, 2), "half_away", "wrap", False, 0)
    assert dut.i.shape() == signed(8) and dut.o.shape() == unsigned(4)
    with pytest.raises(AttributeError):
        dut.rounding = "trunc"


def test_function_errors():
    x = Signal(signed(8))
    with pytest.raises(ValueError, match=r"requantize\.rounding='round' is not valid"):
        requantize(x, SQ(4, 4), SQ(4, 0), rounding="round")
    with pytest.raises(ValueError, match=r"requantize\.overflow"):
        requantize(x, SQ(4, 4), SQ(4, 0), overflow=None)
    with pytest.raises(TypeError, match=r"requantize\.src must be a QFormat"):
        requantize(x, (4, 4), SQ(4, 0))
    with pytest.raises(ValueError, match=r"requantize\.value is 9 bits wide, wider than its "
                                         r"format SQ\(4, 4\)"):
        requantize(Signal(9), SQ(4, 4), SQ(4, 0))
    with pytest.raises(TypeError, match=r"fixed_mul\.fb must be a QFormat"):
        fixed_mul(x, SQ(4, 4), x, None)
    with pytest.raises(TypeError, match=r"fixed_add\.fa must be a QFormat"):
        fixed_add(x, "UQ(8, 0)", x, SQ(4, 4))
    with pytest.raises(TypeError, match=r"fixed_shape\.fmt"):
        fixed_shape(8)


def test_qformat_edges():
    assert (SQ(1, 7).min_int, SQ(1, 7).max_int, SQ(1, 7).width) == (-128, 127, 8)
    assert (UQ(1, 0).min_int, UQ(1, 0).max_int) == (0, 1)
    assert UQ(-2, 4).width == 2 and SQ(10, -8).width == 2
    with pytest.raises(ValueError, match=r"QFormat width i_bits \+ f_bits = 1 is too small"):
        SQ(1, 0)
    with pytest.raises(ValueError, match=r"QFormat width i_bits \+ f_bits = 0 is too small"):
        UQ(3, -3)
    with pytest.raises(ValueError, match=r"QFormat\.i_bits must be an integer"):
        QFormat(1.5, 2, True)
    with pytest.raises(ValueError, match=r"QFormat\.signed must be true or false"):
        QFormat(1, 2, 1)
    assert QFormat.parse("SQ(1, 7)") == SQ(1, 7) and QFormat.parse(str(UQ(-2, 4))) == UQ(-2, 4)
    with pytest.raises(ValueError, match=r"not a fixed-point format"):
        QFormat.parse("Q1.7")
