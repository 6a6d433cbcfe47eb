"""The host bridge top: UART, protocol engine, bus, and a demo target (a register bank and a
memory window) standing in for the accelerators of the SoC top to come."""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..lib.component import ConfiguredComponent, check_config
from .bus import BusDecoder, BusSignature, address_width
from .peripherals import MemoryWindow, RegisterBank
from .config import HostConfig
from .protocol import HostProtocol
from .uart import UARTRx, UARTTx


__all__ = ["DemoTarget", "HostBridge", "add_host_link"]


class DemoTarget(ConfiguredComponent):
    """The demo peripherals of ``config.regions`` behind a decoder: region ``regs``, a
    :class:`RegisterBank` of ``reg_words``, and region ``mem``, a :class:`MemoryWindow` of
    ``mem_words``.

    Interface attributes
    --------------------
    bus : ``In(BusSignature(address_width(config.address_map)))``
        Register accesses are acknowledged in the cycle of ``req``; memory reads one cycle later.
    """

    def __init__(self, *, config):
        check_config("DemoTarget", config, HostConfig)
        super().__init__(config, {"bus": In(BusSignature(address_width(config.address_map)))})


    def elaborate(self, platform):
        m = Module()
        m.submodules.decoder = decoder = BusDecoder(self._config.regions)
        m.submodules.regs = regs = RegisterBank(words=self._config.reg_words)
        m.submodules.mem = mem = MemoryWindow(words=self._config.mem_words)
        wiring.connect(m, wiring.flipped(self.bus), decoder.bus)
        wiring.connect(m, decoder.regs, regs.bus)
        wiring.connect(m, decoder.mem, mem.bus)
        return m


class HostBridge(ConfiguredComponent):
    """UART pins to the demo target: ``UARTRx -> HostProtocol -> DemoTarget``, responses out
    through ``UARTTx``.

    Parameters
    ----------
    config : HostConfig
        Clock, baud rate, timeouts and the demo target's sizes.

    Interface attributes
    --------------------
    rx : ``In(1)``
        Serial input from the host (asynchronous, 1 when idle).
    tx : ``Out(1)``
        Serial output to the host (a register, 1 when idle).

    A request is answered as the module docstring of :mod:`hw.host.protocol` specifies; the
    response's first start bit follows the request's last stop bit by about half a bit, plus the
    bus time of the command's words.
    """

    def __init__(self, *, config):
        check_config("HostBridge", config, HostConfig)
        super().__init__(config, {"rx": In(1, init=1), "tx": Out(1, init=1)})


    def elaborate(self, platform):
        m = Module()
        protocol = add_host_link(m, self._config, self._config.address_map, self.rx, self.tx)
        m.submodules.target = target = DemoTarget(config=self._config)
        wiring.connect(m, protocol.bus, target.bus)
        return m


def add_host_link(m, config, regions, rx, tx):
    """Add ``UARTRx -> HostProtocol -> UARTTx`` for ``config`` (a :class:`HostConfig`) to
    ``m`` on the pins ``rx`` and ``tx``, decoding the bus ``regions``; return the protocol
    engine, whose ``bus`` the caller connects to its peripherals."""
    m.submodules.uart_rx = uart_rx = UARTRx(divisor=config.divisor)
    m.submodules.uart_tx = uart_tx = UARTTx(divisor=config.divisor)
    m.submodules.protocol = protocol = HostProtocol(
        regions=regions, max_words=config.max_words,
        idle_timeout_cycles=config.idle_timeout_cycles,
        bus_timeout_cycles=config.bus_timeout_cycles)
    m.d.comb += [uart_rx.rx.eq(rx), tx.eq(uart_tx.tx)]
    wiring.connect(m, uart_rx.o, protocol.i)
    wiring.connect(m, protocol.o, uart_tx.i)
    return protocol
