"""The pin harness keeps the registers of a core's different inputs apart through synthesis."""

import json
import subprocess

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

import boards
from boards.toolchain import configure_environment
from hw.harness import PinHarness


class _TwoInputs(wiring.Component):
    """Registers ``a`` twice and ``b`` once, without reset like the harness's chain: under a
    plain shift chain, ``b`` is ``a`` delayed by its width, and every one of these registers
    equals a chain stage."""

    def __init__(self):
        super().__init__({"a": In(4), "b": In(4), "c": Out(8)})

    def elaborate(self, platform):
        m = Module()
        a_q, a_qq, b_q = (Signal(4, name=name, reset_less=True)
                          for name in ("a_q", "a_qq", "b_q"))
        m.d.sync += [a_q.eq(self.a), a_qq.eq(a_q), b_q.eq(self.b)]
        m.d.comb += self.c.eq(Cat(a_qq, b_q))
        return m


def test_core_input_registers_survive_synthesis(tmp_path):
    tools = configure_environment(("yosys",))
    plan = boards.get_board("ulx3s-25f").platform().prepare(PinHarness(_TwoInputs()), name="top")
    plan.extract(str(tmp_path))
    (tmp_path / "check.ys").write_text("read_rtlil top.il\nsynth_ecp5 -top top\n"
                                       "write_json net.json\n")
    subprocess.run([tools["yosys"].path, "-q", "check.ys"], cwd=tmp_path, check=True)
    nets = json.loads((tmp_path / "net.json").read_text())["modules"]["top"]["netnames"]
    # The ports are the chain stages (a, b) and the registers (a_q; c is a_qq and b_q): 8 chain
    # stages and 12 core flip-flops, none merged into another.
    names = [f"core.{name}" for name in ("a", "b", "a_q", "c")]
    assert set(names) <= set(nets), "a register was merged into another"
    bits = [bit for name in names for bit in nets[name]["bits"]]
    assert len(bits) == len(set(bits)) == 20
