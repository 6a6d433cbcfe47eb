"""The host bridge on a board's real USB-UART pins.

:func:`host_board_top` is the ``board_top`` of the ``host-bridge`` design: the flow builds it
instead of a :class:`hw.harness.PinHarness`, so the bitstream talks to ``sw.device`` over the
board's UART (FTDI on ULX3S) at ``config.baud``.
"""

from amaranth.hdl import ClockDomain, Elaboratable, Module

from ..board_io import pin, subsignal_pins
from ..lib.ecp5_pll import ECP5Clocking, pll_settings
from .bridge import HostBridge


__all__ = ["HostBoardTop", "host_board_top"]


def _oscillator_hz(platform):
    return platform.lookup(platform.default_clk).clock.frequency


class HostBoardTop(Elaboratable):
    """Board oscillator (through an EHXPLLL when ``clock_hz`` differs from it) -> ``sync``;
    ``uart`` 0 ``rx``/``tx`` pins <-> :class:`HostBridge`.

    Built by :func:`host_board_top`, which checks the board and the clock first.

    Parameters
    ----------
    config : HostConfig or SoCConfig
        Its ``clock_hz`` is replaced by the actual ``sync`` frequency, so the baud divisor and
        timeouts are those of the clock the bitstream runs at.
    pll : PLLSettings or None
        The EHXPLLL making ``clock_hz`` from the oscillator, or None to use the oscillator.
    clock_hz : float
        The ``sync`` frequency.
    make_core : callable
        ``make_core(config=...)``: the component with ``rx`` and ``tx`` ports to put on the pins
        (:class:`HostBridge`, or :class:`hw.soc.soc.SoC`).
    """

    pins = "uart 0 rx/tx (the board's USB-UART) and the default oscillator"

    def __init__(self, config, pll, clock_hz, make_core=HostBridge):
        self.pll = pll
        self.clock_hz = clock_hz
        self.config = config.replace(clock_hz=int(round(clock_hz)))
        self.make_core = make_core

    def elaborate(self, platform):
        m = Module()
        clk = pin(m, platform, platform.default_clk, "i")
        m.domains.sync = ClockDomain("sync")
        m.submodules.clocking = ECP5Clocking(clk, self.pll)
        m.submodules.bridge = bridge = self.make_core(config=self.config)
        uart = subsignal_pins(m, platform, "uart", rx="i", tx="o")
        m.d.comb += [bridge.rx.eq(uart["rx"]), uart["tx"].eq(bridge.tx)]
        return m


def host_board_top(config, platform, clock_hz, *, make_core=HostBridge):
    """``board_top`` of the ``host-bridge`` and ``soc`` designs (see :class:`HostBoardTop`).

    Parameters
    ----------
    config : HostConfig or SoCConfig
    platform : amaranth.build.Platform
        The board; it must have a ``uart`` resource.
    clock_hz : float
        The ``sync`` frequency: the oscillator's, or a frequency an EHXPLLL makes exactly from
        it (as :func:`hw.lib.ecp5_pll.pll_settings` returns).

    Raises
    ------
    ValueError
        If the board has no ``uart`` resource, or ``config`` is not valid at ``clock_hz``.
    """
    if not hasattr(config, "clock_hz"):
        raise TypeError(f"the host board top needs a config with a clock_hz, not {config!r}")
    if "uart" not in {name for name, _number in platform.resources}:
        raise ValueError("it has no UART pins (no 'uart' resource): the host bridge needs one "
                         "to reach the host")
    osc_hz = _oscillator_hz(platform)
    pll = None if abs(clock_hz - osc_hz) < 1 else pll_settings(osc_hz / 1e6, clock_hz / 1e6)
    return HostBoardTop(config, pll, clock_hz, make_core)
