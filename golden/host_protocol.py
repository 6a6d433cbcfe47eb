"""Reference of the host link protocol: CRC, frame encoder/decoder, and a model of the bridge.

Pure Python, sharing no code with the gateware it checks: it imports only the constants and the
region allocation of ``hw/host/config.py``. The protocol itself is specified in the docstring of
``hw/host/protocol.py``; :class:`BridgeModel` is that specification as an executable model, fed
with bytes and with "the line went idle" events, and says which responses the bridge sends and
what its memory holds afterwards.
"""

import dataclasses

from hw.host.config import (
    CMD_READ_BLOCK, CMD_READ_REG, CMD_WRITE_BLOCK, CMD_WRITE_REG, COMMANDS, CRC_BYTES,
    REQUEST_HEADER_BYTES, REQUEST_SYNC, RESPONSE_HEADER_BYTES, RESPONSE_SYNC, STATUS_BAD_ADDRESS,
    STATUS_BAD_CRC, STATUS_BAD_LENGTH, STATUS_BUS_TIMEOUT, STATUS_OK, STATUS_TIMEOUT,
    STATUS_UNKNOWN_CMD, WORD_BYTES,
)


__all__ = ["crc16", "encode_request", "encode_response", "Response", "ProtocolError",
           "decode_responses", "BridgeModel", "WRITE_COMMANDS", "READ_COMMANDS"]


WRITE_COMMANDS = (CMD_WRITE_REG, CMD_WRITE_BLOCK)
READ_COMMANDS = (CMD_READ_REG, CMD_READ_BLOCK)


def crc16(data, crc=0xFFFF):
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, not reflected, no final XOR), bit by bit."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def _with_crc(data):
    crc = crc16(data)
    return bytes(data) + bytes([crc >> 8, crc & 0xFF])


def _words_le(words):
    return b"".join(int(w).to_bytes(WORD_BYTES, "little") for w in words)


def encode_request(cmd, seq, addr, *, count=None, words=None):
    """Bytes of a request frame.

    Reads give ``count`` (words to read); writes give ``words`` (the data, whose length is the
    count). Fields are not range-checked beyond their widths, so that tests can build bad frames.
    """
    if words is not None:
        count = len(words) if count is None else count
    header = bytes([REQUEST_SYNC, cmd & 0xFF, seq & 0xFF]) + (addr & 0xFFFFFFFF).to_bytes(4, "little") \
        + (count & 0xFFFF).to_bytes(2, "little")
    frame = _with_crc(header)
    if words is not None:
        frame += _with_crc(_words_le(words))
    return frame


def encode_response(cmd, seq, status, words=()):
    """Bytes of a response frame: header, ``words`` (data of a successful read), CRC."""
    header = bytes([RESPONSE_SYNC, cmd, seq, status]) + len(words).to_bytes(2, "little")
    return _with_crc(header + _words_le(words))


@dataclasses.dataclass(frozen=True)
class Response:
    cmd: int
    seq: int
    status: int
    words: tuple = ()

    def encode(self):
        return encode_response(self.cmd, self.seq, self.status, self.words)


class ProtocolError(ValueError):
    """The bytes are not a sequence of well-formed responses."""


def decode_responses(data):
    """Split ``data`` (bytes from the board) into :class:`Response` objects.

    Raises
    ------
    ProtocolError
        On a byte that is not a response sync, a truncated response or a CRC mismatch.
    """
    data = bytes(data)
    out = []
    pos = 0
    while pos < len(data):
        if data[pos] != RESPONSE_SYNC:
            raise ProtocolError(f"byte {pos}: {data[pos]:#04x} is not a response sync")
        header = data[pos:pos + RESPONSE_HEADER_BYTES]
        if len(header) < RESPONSE_HEADER_BYTES:
            raise ProtocolError(f"byte {pos}: truncated response header")
        count = int.from_bytes(header[4:6], "little")
        end = pos + RESPONSE_HEADER_BYTES + count * WORD_BYTES + CRC_BYTES
        if end > len(data):
            raise ProtocolError(f"byte {pos}: truncated response ({len(data) - pos} of "
                                f"{end - pos} bytes)")
        if crc16(data[pos:end]) != 0:
            raise ProtocolError(f"byte {pos}: response CRC mismatch")
        body = data[pos + RESPONSE_HEADER_BYTES:end - CRC_BYTES]
        words = tuple(int.from_bytes(body[n:n + WORD_BYTES], "little")
                      for n in range(0, len(body), WORD_BYTES))
        out.append(Response(header[1], header[2], header[3], words))
        pos = end
    return out


class BridgeModel:
    """Executable specification of the bridge's frame parser and responder.

    Parameters
    ----------
    regions : sequence of hw.host.config.Region
        The bus address map.
    max_words : int
        Longest block a frame may carry.
    dead : collection of str
        Regions whose peripheral never acknowledges (answered with ``STATUS_BUS_TIMEOUT``).

    Feed it what the bridge receives with :meth:`byte` and :meth:`idle` (the line stayed silent
    for the idle timeout); :attr:`responses` collects what it sends and :attr:`memory` maps each
    region name to its list of words.
    """

    def __init__(self, regions, *, max_words, dead=()):
        self.regions = tuple(regions)
        self.max_words = max_words
        self.dead = frozenset(dead)
        self.memory = {r.name: [0] * r.size for r in self.regions}
        self.responses = []
        self._state = "hunt"
        self._frame = b""
        self._target = None
        self._pending = None

    def _respond(self, status, words=()):
        cmd, seq = (tuple(self._frame[1:3]) + (0, 0))[:2]
        self.responses.append(Response(cmd, seq, status, tuple(words)))
        self._state = "hunt"

    def _reject(self, status):
        # The rest of a rejected frame is unknown (its header may be corrupt): drain until idle.
        self._pending = status
        self._state = "drain"

    def _region(self, addr, count):
        for region in self.regions:
            if region.base <= addr and addr + count <= region.end:
                return region
        return None

    def _header(self):
        cmd = self._frame[1]
        addr = int.from_bytes(self._frame[3:7], "little")
        count = int.from_bytes(self._frame[7:9], "little")
        if crc16(self._frame) != 0:
            return self._reject(STATUS_BAD_CRC)
        if cmd not in COMMANDS:
            return self._reject(STATUS_UNKNOWN_CMD)
        if not 1 <= count <= self.max_words or (cmd in (CMD_READ_REG, CMD_WRITE_REG) and count != 1):
            return self._reject(STATUS_BAD_LENGTH)
        region = self._region(addr, count)
        if region is None:
            return self._reject(STATUS_BAD_ADDRESS)
        self._target = (region, addr - region.base, count)
        if cmd in WRITE_COMMANDS:
            self._state = "payload"
            return None
        return self._execute()

    def _execute(self):
        region, offset, count = self._target
        write = self._frame[1] in WRITE_COMMANDS
        payload = self._frame[REQUEST_HEADER_BYTES:]
        if write and crc16(payload) != 0:
            return self._respond(STATUS_BAD_CRC)
        if region.name in self.dead:
            return self._respond(STATUS_BUS_TIMEOUT)
        mem = self.memory[region.name]
        if not write:
            return self._respond(STATUS_OK, mem[offset:offset + count])
        for n in range(count):
            mem[offset + n] = int.from_bytes(payload[n * WORD_BYTES:(n + 1) * WORD_BYTES],
                                             "little")
        return self._respond(STATUS_OK)

    def byte(self, value):
        """The bridge receives one byte."""
        if self._state == "hunt":
            if value == REQUEST_SYNC:
                self._frame = bytes([value])
                self._state = "header"
        elif self._state == "header":
            self._frame += bytes([value])
            if len(self._frame) == REQUEST_HEADER_BYTES:
                self._header()
        elif self._state == "payload":
            self._frame += bytes([value])
            _, _, count = self._target
            if len(self._frame) == REQUEST_HEADER_BYTES + count * WORD_BYTES + CRC_BYTES:
                self._execute()

    def feed(self, data):
        for value in data:
            self.byte(value)

    def idle(self):
        """The line stays silent for the idle timeout."""
        if self._state in ("header", "payload"):
            self._respond(STATUS_TIMEOUT)
        elif self._state == "drain":
            self._respond(self._pending)
