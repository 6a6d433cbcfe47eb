"""Putting a core with more ports than a board has pins onto a board.

:class:`PinHarness` is how a core that has no board-level top of its own is built into a bitstream:
every input bit of the core is driven by a stage of a shift register fed from one input pin (it
shifts every other cycle, so that no register of the core is an equal copy of a chain stage and
Yosys merges no registers of different inputs) through a landing register per bit, and all
output bits are registered and XOR-folded, one LUT level per register stage, into one bit that
drives an LED. Because every input
comes from a pin and every output reaches one, synthesis can neither constant-fold the core nor
remove any of it, so the utilization and fmax that nextpnr reports are those of the core (plus the
harness, which the report states). Paths from and to the harness registers are register to
register, like the core's.
"""

from amaranth.hdl import Cat, ClockDomain, Elaboratable, Module, Signal, Value
from amaranth.lib import wiring

from .board_io import pin, subsignal_pins
from .lib.ecp5_pll import ECP5Clocking


__all__ = ["PinHarness", "port_bits"]


#: Pins tried, in order, for the serial input and the folded output.
_INPUT_PINS = (("button_fire", None), ("button", None), ("switch", None), ("uart", "rx"))
_OUTPUT_PINS = (("led", None), ("rgb_led", "r"), ("uart", "tx"))


def port_bits(component):
    """The flattened input and output signals of ``component``: ``(inputs, outputs)``."""
    inputs, outputs = [], []
    for _path, member, value in component.signature.flatten(component):
        (inputs if member.flow == wiring.In else outputs).append(Value.cast(value))
    return inputs, outputs


def _first_pin(m, platform, candidates, direction):
    names = {name for name, _number in platform.resources}
    for name, subsignal in candidates:
        if name in names:
            if subsignal:
                return subsignal_pins(m, platform, name, **{subsignal: direction})[subsignal]
            return pin(m, platform, name, direction)
    raise ValueError(f"board has none of the pins the harness uses: "
                     + ", ".join(name for name, _ in candidates))


class PinHarness(Elaboratable):
    """Board top around ``core``: serial-in shift chain (shifting every other cycle), registered
    XOR-fold tree, optional PLL.

    Parameters
    ----------
    core : wiring.Component
        The design; its ``sync`` domain is the board clock or the PLL output.
    pll : PLLSettings or None
        When given, the ``sync`` domain comes from an EHXPLLL fed by the board oscillator.
    """

    def __init__(self, core, *, pll=None):
        self.core = core
        self.pll = pll
        inputs, outputs = port_bits(core)
        self.input_bits = sum(len(s) for s in inputs)
        self.output_bits = sum(len(s) for s in outputs)

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = self.core

        # The oscillator pin carries its board constraint; nextpnr derives a PLL output's.
        clk = pin(m, platform, platform.default_clk, "i")
        m.domains.sync = ClockDomain("sync")
        m.submodules.clocking = ECP5Clocking(clk, self.pll)

        serial_in = _first_pin(m, platform, _INPUT_PINS, "i")
        led = _first_pin(m, platform, _OUTPUT_PINS, "o")

        inputs, outputs = port_bits(self.core)
        if inputs:
            # The chain shifts under an enable of its own, which no register of the core has.
            # A plain shift register's stages are delayed copies of each other: Yosys merges a
            # core register of one input bit with the next chain stage, and from there, one by
            # one, the registers of different inputs (in a systolic array, the activation
            # registers of different rows), which then fan out across the core.
            shift = Signal(reset_less=True)
            m.d.sync += shift.eq(~shift)
            chain = Signal(self.input_bits, reset_less=True)
            with m.If(shift):
                m.d.sync += chain.eq(Cat(serial_in, chain[:-1]))
            # Each input bit lands in a register of its own that loads every cycle: a chain
            # stage sits wherever its chain neighbours are, its landing register beside the
            # core logic it feeds, as an upstream register of a real design would.
            landing = Signal(self.input_bits, reset_less=True)
            m.d.sync += landing.eq(chain)
            offset = 0
            for signal in inputs:
                m.d.comb += signal.eq(landing[offset:offset + len(signal)])
                offset += len(signal)

        # Outputs are registered before anything else, and folded four bits (one LUT) per
        # registered level, so no harness logic ever lengthens a path of the core. No harness
        # register is reset: the reset net would otherwise reach every input and output bit.
        level = Signal(max(self.output_bits, 1), reset_less=True)
        if outputs:
            m.d.sync += level.eq(Cat(*outputs))
        while len(level) > 1:
            groups = [level[n:n + 4] for n in range(0, len(level), 4)]
            folded = Signal(len(groups), reset_less=True)
            m.d.sync += folded.eq(Cat(group.xor() for group in groups))
            level = folded
        m.d.comb += led.eq(level[0])
        return m
