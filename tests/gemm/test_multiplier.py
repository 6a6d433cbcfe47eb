# amaranth: UnusedElaboratable=no
"""Multiplier: exact products (exhaustive for LUT weights), latency 2, clock enables, the
MULT18X18D instance on ECP5 and no multiplier cell in LUT logic; registered_dsp_product: exact
products a cycle later, its MULT18X18D with only the output register on ECP5."""

import random

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Fragment, Instance, Module, Signal
from amaranth.sim import Simulator

from boards import get_board
from hw.gemm.multiplier import Multiplier, registered_dsp_product


def products(mul, pairs, enables=()):
    """Drive ``pairs`` one per cycle, with ``(a_en, b_en, p_en)`` from ``enables`` (all high
    once it runs out); return ``p`` after each clock edge. With all enables high the product
    of pair ``t`` is entry ``t + 2``: visible 3 cycles after the cycle it was driven in."""
    seen = []
    enables = list(enables) + [(1, 1, 1)] * (len(pairs) - len(enables))

    async def bench(ctx):
        for (a, b), (a_en, b_en, p_en) in zip(pairs, enables):
            ctx.set(mul.a, a)
            ctx.set(mul.b, b)
            ctx.set(mul.a_en, a_en)
            ctx.set(mul.b_en, b_en)
            ctx.set(mul.p_en, p_en)
            await ctx.tick()
            seen.append(ctx.get(mul.p))

    sim = Simulator(mul)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return seen


@pytest.mark.parametrize("b_bits", [2, 4])
def test_lut_exhaustive(b_bits):
    mul = Multiplier(a_bits=8, b_bits=b_bits, kind="lut")
    pairs = [(a, b) for a in range(-128, 128) for b in range(-(1 << (b_bits - 1)),
                                                           1 << (b_bits - 1))]
    assert products(mul, pairs + [(0, 0)] * 2)[2:] == [a * b for a, b in pairs]


def test_dsp_fallback_extremes_and_random():
    rng = random.Random(3)
    mul = Multiplier(a_bits=8, b_bits=8, kind="dsp")
    ends = [-128, -127, -1, 0, 1, 127]
    pairs = [(a, b) for a in ends for b in ends]
    pairs += [(rng.randint(-128, 127), rng.randint(-128, 127)) for _ in range(300)]
    assert products(mul, pairs + [(0, 0)] * 2)[2:] == [a * b for a, b in pairs]
    assert mul.latency == 3


def test_wide_dsp_operands():
    mul = Multiplier(a_bits=18, b_bits=18)
    pairs = [(-(1 << 17), -(1 << 17)), ((1 << 17) - 1, -(1 << 17)), (12345, -678)]
    assert products(mul, pairs + [(0, 0)] * 2)[2:] == [a * b for a, b in pairs]


def register_model(pairs, enables):
    """What ``p`` holds after each edge, from the documented register semantics."""
    a_reg = b_reg = first = p = 0
    seen = []
    for (a, b), (a_en, b_en, p_en) in zip(pairs, enables):
        if p_en:
            p, first = first, a_reg * b_reg
        a_reg = a if a_en else a_reg
        b_reg = b if b_en else b_reg
        seen.append(p)
    return seen


@pytest.mark.parametrize("kind", ["dsp", "lut"])
def test_clock_enables_hold_each_register(kind):
    rng = random.Random(kind)
    mul = Multiplier(a_bits=8, b_bits=4, kind=kind)
    pairs = [(rng.randint(-128, 127), rng.randint(-8, 7)) for _ in range(200)]
    enables = [tuple(int(rng.random() < 0.6) for _ in range(3)) for _ in pairs]
    seen = products(mul, pairs, enables)
    assert seen == register_model(pairs, enables)
    assert len(set(seen)) > 20


def test_mult18x18d_on_ecp5():
    mul = Multiplier(a_bits=8, b_bits=8)
    platform = get_board("ulx3s-45f").platform()
    fragment = Fragment.get(mul, platform)
    instances = [sub for sub, _name, _src in fragment.subfragments if isinstance(sub, Instance)]
    assert [i.type for i in instances] == ["MULT18X18D"]
    params = instances[0].parameters
    for reg, ce in (("INPUTA", "CE0"), ("INPUTB", "CE1"), ("OUTPUT", "CE2")):
        assert params[f"REG_{reg}_CLK"] == "CLK0" and params[f"REG_{reg}_CE"] == ce


def test_lut_has_no_multiply_cell():
    text = rtlil.convert(Multiplier(a_bits=8, b_bits=4, kind="lut"))
    assert "$mul" not in text
    assert "$mul" in rtlil.convert(Multiplier(a_bits=8, b_bits=4, kind="dsp"))


@pytest.mark.parametrize("kwargs, message", [
    ({"a_bits": 8, "b_bits": 8, "kind": "lut"},
     r"Multiplier.b_bits=8 is out of range: expected 2..4"),
    ({"a_bits": 19, "b_bits": 8}, r"Multiplier.a_bits=19 is out of range: expected 2..18"),
    ({"a_bits": 8, "b_bits": 1}, r"Multiplier.b_bits=1 is out of range"),
    ({"a_bits": 8, "b_bits": 8, "kind": "booth"}, r"Multiplier.kind='booth' is not valid"),
])
def test_parameter_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Multiplier(**kwargs)


def test_registered_dsp_product_is_exact_a_cycle_later():
    m = Module()
    a, b = Signal(18), Signal(11)
    product = registered_dsp_product(m, None, a, b, "ab")
    rng = random.Random(5)
    pairs = [(rng.getrandbits(18), rng.getrandbits(11)) for _ in range(300)]
    pairs += [((1 << 18) - 1, (1 << 11) - 1), (0, 0)]
    seen = []

    async def bench(ctx):
        for x, y in pairs:
            ctx.set(a, x)
            ctx.set(b, y)
            await ctx.tick()
            seen.append(ctx.get(product))

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert len(product) == 29
    assert seen == [x * y for x, y in pairs]


def test_registered_dsp_product_on_ecp5_registers_the_output_only():
    m = Module()
    registered_dsp_product(m, get_board("ulx3s-85f").platform(), Signal(17), Signal(18), "ab")
    fragment = Fragment.get(m, None)
    instances = [sub for sub, _name, _src in fragment.subfragments if isinstance(sub, Instance)]
    assert [i.type for i in instances] == ["MULT18X18D"]
    params = instances[0].parameters
    assert (params["REG_INPUTA_CLK"], params["REG_INPUTB_CLK"], params["REG_OUTPUT_CLK"]) == \
        ("NONE", "NONE", "CLK0")
    ports = instances[0].ports
    assert ports["SIGNEDA"][0].value == 0 and ports["SIGNEDB"][0].value == 0


def test_registered_dsp_product_rejects_wide_operands():
    with pytest.raises(ValueError, match=r"registered_dsp_product: operands of at most 18 bits, "
                                         r"not 19 and 4"):
        registered_dsp_product(Module(), None, Signal(19), Signal(4), "ab")
