"""The on-chip register/memory bus and its address decoder (peripherals: :mod:`hw.host.peripherals`).

Every access moves one 32-bit word at a word address. The initiator raises ``req`` with ``addr``,
``we`` and (for a write) ``w_data`` and holds them all steady until it sees ``ack``; the access
completes at the clock edge where ``req & ack`` are both high: a write takes ``w_data`` at that
edge, a read's ``r_data`` is valid in that cycle. ``ack`` may be combinational (same cycle as
``req``) or come any number of cycles later; a peripheral raises it only while ``req`` is high,
and must tolerate an initiator that gives up (lowers ``req`` without an ``ack``, see
:class:`~hw.host.protocol.HostProtocol`'s bus timeout).

Peripherals are placed by :func:`hw.host.config.allocate_regions` from a list of
``(name, size)``; :func:`address_map_json` / :func:`write_address_map` publish the result for
drivers and documentation.
"""

import json

from amaranth.hdl import Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..lib.config import check_int
from .config import allocate_regions


__all__ = ["BusSignature", "at_or_above", "address_width", "address_map_json", "write_address_map",
           "BusDecoder"]


#: Bits of a bus word.
DATA_WIDTH = 32


class BusSignature(wiring.Signature):
    """The bus, seen from the initiator: ``addr``, ``w_data``, ``we``, ``req`` out;
    ``r_data``, ``ack`` in (see the module docstring for the handshake).

    Parameters
    ----------
    addr_width : int
        Word address bits (0 for a single-word peripheral).
    """

    def __init__(self, addr_width):
        self._addr_width = check_int("addr_width", addr_width, min=0, max=32,
                                     owner="BusSignature")
        super().__init__({
            "addr": Out(addr_width),
            "w_data": Out(DATA_WIDTH),
            "we": Out(1),
            "req": Out(1),
            "r_data": In(DATA_WIDTH),
            "ack": In(1),
        })

    @property
    def addr_width(self):
        return self._addr_width

    def __eq__(self, other):
        return isinstance(other, BusSignature) and other.addr_width == self.addr_width

    def __repr__(self):
        return f"BusSignature({self._addr_width})"


def at_or_above(addr, base):
    """``addr >= base``, left out for ``base == 0``, where it is constant (and linted as such)."""
    return addr >= base if base else Const(1)


def address_width(regions):
    """Word address bits that reach every region of ``regions`` (placed :class:`Region` s)."""
    return max(1, (max(r.end for r in regions) - 1).bit_length())


def address_map_json(regions):
    """The address map of ``(name, size)`` peripherals, as a JSON-ready dict."""
    placed = allocate_regions(regions)
    return {
        "unit": "32-bit word",
        "address_width": address_width(placed),
        "regions": [{"name": r.name, "base": r.base, "size": r.size,
                     "byte_base": r.base * 4, "byte_size": r.size * 4} for r in placed],
    }


def write_address_map(path, regions):
    """Write :func:`address_map_json` of ``regions`` to ``path`` (indented JSON)."""
    with open(path, "w") as f:
        json.dump(address_map_json(regions), f, indent=2)
        f.write("\n")


class BusDecoder(wiring.Component):
    """Routes one initiator to several peripherals by address.

    Parameters
    ----------
    regions : sequence of (str, int)
        Peripheral names and sizes in words, placed by
        :func:`~hw.host.config.allocate_regions` (each aligned to its size rounded up to a power
        of two). Names become port names, so ``bus`` is not allowed.

    Interface attributes
    --------------------
    bus : ``In(BusSignature(address_width))``
        From the initiator.
    <name> : ``Out(BusSignature(region.span_bits))``, one per region
        To the peripheral, addressed from 0 within its region. Only the selected one sees
        ``req``; ``addr``, ``we`` and ``w_data`` go to all.

    The decoder is combinational (no added latency). An address inside no region (beyond the
    last, or in the alignment gap after a region's end) is acknowledged at once, reads as 0,
    and writes nowhere, so that a stray access cannot stall the initiator.
    """

    def __init__(self, regions):
        self._regions = allocate_regions(regions)
        if any(r.name == "bus" for r in self._regions):
            raise ValueError("BusDecoder: a region cannot be named 'bus' (the initiator port)")
        self._addr_width = address_width(self._regions)
        super().__init__({
            "bus": In(BusSignature(self._addr_width)),
            **{r.name: Out(BusSignature(r.span_bits)) for r in self._regions},
        })

    @property
    def regions(self):
        """The placed regions (:class:`~hw.host.config.Region`), in address order."""
        return self._regions

    @property
    def addr_width(self):
        return self._addr_width

    def elaborate(self, platform):
        m = Module()
        hit = Signal()
        for region in self._regions:
            port = getattr(self, region.name)
            selected = at_or_above(self.bus.addr, region.base) & (self.bus.addr < region.end)
            m.d.comb += [
                port.addr.eq(self.bus.addr - region.base),
                port.w_data.eq(self.bus.w_data),
                port.we.eq(self.bus.we),
                port.req.eq(self.bus.req & selected),
            ]
            with m.If(selected):
                m.d.comb += [
                    hit.eq(1),
                    self.bus.ack.eq(port.ack),
                    self.bus.r_data.eq(port.r_data),
                ]
        with m.If(~hit):
            m.d.comb += self.bus.ack.eq(self.bus.req)
        return m
