"""Configuration of the host bridge (UART <-> framed protocol <-> register/memory bus).

Standard library only (DESIGN.md section 2): ``golden/host_protocol.py`` and ``sw/`` read it
without pulling in gateware. Besides :class:`HostConfig`, it holds what both sides of the link must
agree on: the frame constants, the status codes and the allocation of bus regions to addresses.
"""

import dataclasses
import math

from ..lib.config import Config, check_int


__all__ = [
    "HostConfig", "Region", "allocate_regions",
    "REQUEST_SYNC", "RESPONSE_SYNC", "REQUEST_HEADER_BYTES", "RESPONSE_HEADER_BYTES", "CRC_BYTES",
    "BITS_PER_CHAR", "WORD_BYTES", "MAX_WORDS_LIMIT",
    "CMD_READ_REG", "CMD_WRITE_REG", "CMD_READ_BLOCK", "CMD_WRITE_BLOCK", "COMMANDS",
    "STATUS_OK", "STATUS_BAD_CRC", "STATUS_UNKNOWN_CMD", "STATUS_BAD_LENGTH",
    "STATUS_BAD_ADDRESS", "STATUS_TIMEOUT", "STATUS_BUS_TIMEOUT", "STATUS_NAMES",
]


#: First byte of every request (host to board) and of every response (board to host). They differ
#: so that a looped-back cable or an echoing terminal is not mistaken for a board.
REQUEST_SYNC = 0xA5
RESPONSE_SYNC = 0x5A

#: Request header: SYNC, CMD, SEQ, ADDR (4 bytes, little-endian), LEN (2 bytes, little-endian),
#: header CRC (2 bytes, big-endian). Response header: SYNC, CMD, SEQ, STATUS, LEN (2 bytes).
REQUEST_HEADER_BYTES = 11
RESPONSE_HEADER_BYTES = 6
CRC_BYTES = 2

#: 8N1 framing on the line: start bit, 8 data bits, stop bit.
BITS_PER_CHAR = 10

#: The bus carries 32-bit words; addresses and lengths count words.
WORD_BYTES = 4

#: CRC-16/CCITT-FALSE keeps a Hamming distance of 4 (every 1-, 2- and 3-bit error detected) up
#: to 32751 message bits; 1023 words (32736 bits) is the longest payload that stays under it.
MAX_WORDS_LIMIT = 1023

CMD_READ_REG = 0x01
CMD_WRITE_REG = 0x02
CMD_READ_BLOCK = 0x03
CMD_WRITE_BLOCK = 0x04
COMMANDS = (CMD_READ_REG, CMD_WRITE_REG, CMD_READ_BLOCK, CMD_WRITE_BLOCK)

STATUS_OK = 0x00
STATUS_BAD_CRC = 0x01
STATUS_UNKNOWN_CMD = 0x02
STATUS_BAD_LENGTH = 0x03
STATUS_BAD_ADDRESS = 0x04
STATUS_TIMEOUT = 0x05
STATUS_BUS_TIMEOUT = 0x06
STATUS_NAMES = {
    STATUS_OK: "ok", STATUS_BAD_CRC: "bad CRC", STATUS_UNKNOWN_CMD: "unknown command",
    STATUS_BAD_LENGTH: "bad length", STATUS_BAD_ADDRESS: "address out of range",
    STATUS_TIMEOUT: "inter-byte timeout", STATUS_BUS_TIMEOUT: "bus timeout",
}

_OWNER = "HostConfig"

#: Largest mismatch between the requested baud rate and ``clock_hz / divisor`` that we accept: the
#: receiver samples mid-bit with one clock of jitter, and the far end has its own error.
_MAX_BAUD_ERROR = 0.02

#: Mid-bit sampling needs a few clocks per bit to land away from the edges.
_MIN_DIVISOR = 4


@dataclasses.dataclass(frozen=True)
class Region:
    """A peripheral on the bus: ``size`` words at word addresses ``base .. base + size - 1``."""
    name: str
    base: int
    size: int

    @property
    def end(self):
        """One past the last word address."""
        return self.base + self.size

    @property
    def span_bits(self):
        """Address bits decoded inside the region (its size rounded up to a power of two)."""
        return max(0, (self.size - 1).bit_length())


def allocate_regions(regions):
    """Place ``(name, size)`` peripherals on the bus, in order, each aligned to its size.

    Each region starts at the next multiple of its size rounded up to a power of two, so that the
    decoder selects a region from the high address bits alone.

    Parameters
    ----------
    regions : iterable of (str, int)
        Peripheral names (Python identifiers, unique) and sizes in 32-bit words (>= 1).

    Returns
    -------
    tuple of Region
    """
    placed = []
    base = 0
    names = set()
    for entry in regions:
        try:
            name, size = entry
        except (TypeError, ValueError):
            raise ValueError(f"bus region {entry!r} is not a (name, size) pair") from None
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"bus region name {name!r} is not a Python identifier")
        if name in names:
            raise ValueError(f"bus region name {name!r} is used twice")
        names.add(name)
        check_int("size", size, min=1, max=1 << 30, owner=f"bus region {name!r}")
        align = 1 << (size - 1).bit_length()
        base = -(-base // align) * align
        placed.append(Region(name, base, size))
        base += size
    if not placed:
        raise ValueError("a bus needs at least one region")
    return tuple(placed)


@dataclasses.dataclass(frozen=True)
class HostConfig(Config):
    """The host bridge and its demo target.

    Parameters
    ----------
    clock_hz : int
        Frequency of the ``sync`` clock domain (the board oscillator, 25 MHz on ULX3S).
    baud : int
        Line rate in bits per second. The default, 1 Mbaud, divides 25, 48 and 100 MHz exactly
        and is an exact rate of FTDI and CH340 USB-UARTs (3 Mbaud / 3); 3 Mbaud would need 8.33
        clocks per bit at 25 MHz.
    idle_timeout_us : int
        Silence, in microseconds, after which a frame being received is abandoned (answered
        with ``STATUS_TIMEOUT``) and after which a rejected frame's remaining bytes are deemed
        over. The default, 10 ms, tolerates the gaps of USB full-speed bulk transfers (1 ms
        frames). Must be at least two character times.
    bus_timeout_cycles : int
        Clock cycles a bus peripheral may take to acknowledge an access before the command is
        answered with ``STATUS_BUS_TIMEOUT``.
    max_words : int
        Longest block (32-bit words) of one frame, and the depth of the frame buffer that holds a
        write until its CRC has been checked (512 words: one ECP5 block RAM). At most
        :data:`MAX_WORDS_LIMIT`, the longest payload the CRC protects with Hamming distance 4.
    reg_words : int
        Registers (32-bit, read/write) of the demo register bank, region ``regs``.
    mem_words : int
        Words of the demo memory window, region ``mem`` (1024 words: 4 KiB).
    """
    clock_hz: int = 25_000_000
    baud: int = 1_000_000
    idle_timeout_us: int = 10_000
    bus_timeout_cycles: int = 1024
    max_words: int = 512
    reg_words: int = 16
    mem_words: int = 1024

    def __post_init__(self):
        check_int("clock_hz", self.clock_hz, min=1_000_000, max=1_000_000_000, owner=_OWNER)
        check_int("baud", self.baud, min=300, max=self.clock_hz // _MIN_DIVISOR, owner=_OWNER)
        error = abs(self.clock_hz / self.divisor - self.baud) / self.baud
        if error > _MAX_BAUD_ERROR:
            raise ValueError(f"{_OWNER}.baud={self.baud} is not reachable from clock_hz="
                             f"{self.clock_hz}: the nearest divisor {self.divisor} gives "
                             f"{self.clock_hz / self.divisor:.0f} baud ({error:.1%} off, expected "
                             f"<= {_MAX_BAUD_ERROR:.0%})")
        check_int("idle_timeout_us", self.idle_timeout_us, min=1, max=10_000_000, owner=_OWNER)
        min_cycles = 2 * BITS_PER_CHAR * self.divisor
        if self.idle_timeout_cycles < min_cycles:
            min_us = math.ceil(min_cycles * 1e6 / self.clock_hz)
            raise ValueError(f"{_OWNER}.idle_timeout_us={self.idle_timeout_us} is shorter than "
                             f"two characters at {self.baud} baud: expected >= {min_us}")
        check_int("bus_timeout_cycles", self.bus_timeout_cycles, min=2, max=1 << 20,
                  owner=_OWNER)
        check_int("max_words", self.max_words, min=1, max=MAX_WORDS_LIMIT, owner=_OWNER)
        check_int("reg_words", self.reg_words, min=1, max=256, owner=_OWNER)
        check_int("mem_words", self.mem_words, min=1, max=1 << 16, owner=_OWNER)

    @property
    def divisor(self):
        """Clock cycles per bit on the line."""
        return max(1, round(self.clock_hz / self.baud))

    @property
    def idle_timeout_cycles(self):
        """:attr:`idle_timeout_us` in clock cycles."""
        return self.idle_timeout_us * self.clock_hz // 1_000_000

    @property
    def regions(self):
        """The demo target's peripherals, as ``(name, size in words)``."""
        return (("regs", self.reg_words), ("mem", self.mem_words))

    @property
    def address_map(self):
        """The demo target's regions, placed by :func:`allocate_regions`."""
        return allocate_regions(self.regions)

    # Analytic performance model -------------------------------------------------------------

    def request_bytes(self, cmd, words):
        """Bytes on the line of a request carrying ``words`` (data only for writes)."""
        payload = words * WORD_BYTES + CRC_BYTES if cmd in (CMD_WRITE_REG, CMD_WRITE_BLOCK) else 0
        return REQUEST_HEADER_BYTES + payload

    def response_bytes(self, cmd, words):
        """Bytes on the line of a successful response to a ``words``-word command."""
        data = words * WORD_BYTES if cmd in (CMD_READ_REG, CMD_READ_BLOCK) else 0
        return RESPONSE_HEADER_BYTES + data + CRC_BYTES

    def frame_efficiency(self, cmd, words):
        """Payload bytes over all bytes of the request and its response (stop-and-wait)."""
        return words * WORD_BYTES / (self.request_bytes(cmd, words)
                                     + self.response_bytes(cmd, words))

    def line_bytes_per_s(self):
        """Characters per second on one direction of the line (10 bits each)."""
        return self.clock_hz / self.divisor / BITS_PER_CHAR
