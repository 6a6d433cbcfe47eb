"""ECP5 clocking: the ``sync`` domain from the board oscillator, through an EHXPLLL when another
frequency is requested."""

import dataclasses

from amaranth.hdl import (ClockDomain, ClockSignal, Const, Elaboratable, Instance, Module,
                          ResetSignal, Signal)
from amaranth.lib.cdc import ResetSynchronizer


__all__ = ["PLLSettings", "pll_settings", "ECP5Clocking"]

# Limits of the EHXPLLL (Lattice TN1263, as used by Project Trellis' ecppll).
_PFD_MHZ = (3.125, 400.0)
_VCO_MHZ = (400.0, 800.0)
_OUT_MHZ = (3.125, 400.0)


@dataclasses.dataclass(frozen=True)
class PLLSettings:
    clki_div: int
    clkfb_div: int
    clkop_div: int
    input_mhz: float

    @property
    def output_mhz(self):
        return self.input_mhz / self.clki_div * self.clkfb_div

    @property
    def vco_mhz(self):
        return self.output_mhz * self.clkop_div


def pll_settings(input_mhz, output_mhz):
    """Dividers whose output is nearest ``output_mhz`` (ties: VCO nearest the middle of its range).

    Raises
    ------
    ValueError
        If ``output_mhz`` is outside what an EHXPLLL can produce.
    """
    if not _OUT_MHZ[0] <= output_mhz <= _OUT_MHZ[1]:
        raise ValueError(f"freq={output_mhz} MHz is out of range: an ECP5 PLL produces "
                         f"{_OUT_MHZ[0]}..{_OUT_MHZ[1]} MHz")
    best, best_key = None, None
    for clki_div in range(1, 129):
        pfd = input_mhz / clki_div
        if not _PFD_MHZ[0] <= pfd <= _PFD_MHZ[1]:
            continue
        for clkfb_div in range(1, 81):
            out = pfd * clkfb_div
            if not _OUT_MHZ[0] <= out <= _OUT_MHZ[1]:
                continue
            for clkop_div in range(1, 129):
                vco = out * clkop_div
                if not _VCO_MHZ[0] <= vco <= _VCO_MHZ[1]:
                    continue
                key = (abs(out - output_mhz), abs(vco - 600.0))
                if best_key is None or key < best_key:
                    best_key = key
                    best = PLLSettings(clki_div, clkfb_div, clkop_div, input_mhz)
    if best is None:
        raise ValueError(f"freq={output_mhz} MHz cannot be made from a {input_mhz} MHz oscillator")
    return best


class ECP5Clocking(Elaboratable):
    """Drives the ``sync`` domain, clock and reset, from a board oscillator; the top defines
    the domain (Amaranth 0.6 drops domains defined below where they are used).

    With ``pll`` settings the clock comes from an EHXPLLL and the domain is held in reset until
    the PLL locks; without, the oscillator clocks the domain directly. Either way the reset is
    released synchronously after configuration (Amaranth's own default Lattice domain is
    reset-less, which cores that use ``ResetSignal()``, such as registered DSP blocks, cannot
    elaborate in).

    The synchronized reset reaches the ``sync`` domain through a global buffer (DCCA): in fabric
    routing the one flip-flop that drives every reset spread over an 8-lane GBU was the
    critical path of a build at 90.2 MHz (10.1 ns of routing).
    """

    def __init__(self, clk_in, pll: PLLSettings | None = None):
        self.clk_in = clk_in
        self.pll = pll

    def elaborate(self, platform):
        m = Module()
        m.domains.reset_source = ClockDomain(local=True)
        m.d.comb += ClockSignal("reset_source").eq(ClockSignal("sync"))
        m.submodules.reset_buffer = Instance(
            "DCCA", i_CLKI=ResetSignal("reset_source"), i_CE=Const(1),
            o_CLKO=ResetSignal("sync"))
        if self.pll is None:
            m.d.comb += ClockSignal("sync").eq(self.clk_in)
            m.submodules.reset_sync = ResetSynchronizer(Const(0), domain="reset_source")
            return m
        s = self.pll
        locked = Signal()
        m.submodules.pll = Instance(
            "EHXPLLL",
            a_FREQUENCY_PIN_CLKI=f"{s.input_mhz:g}",
            a_FREQUENCY_PIN_CLKOP=f"{s.output_mhz:g}",
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8",
            a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA",
            p_CLKI_DIV=s.clki_div, p_CLKFB_DIV=s.clkfb_div,
            p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=s.clkop_div,
            # Zero phase with CLKOP feedback, as Trellis' ecppll chooses it.
            p_CLKOP_CPHASE=(s.clkop_div - 1) // 2, p_CLKOP_FPHASE=0,
            p_FEEDBK_PATH="CLKOP",
            i_RST=0, i_STDBY=0, i_CLKI=self.clk_in, i_CLKFB=ClockSignal("sync"),
            i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
            i_PLLWAKESYNC=0, i_ENCLKOP=0,
            o_CLKOP=ClockSignal("sync"), o_LOCK=locked,
        )
        m.submodules.reset_sync = ResetSynchronizer(~locked, domain="reset_source")
        return m
