"""One driver API for the host bridge (``hw/host``), over a serial port or the simulator.

:class:`Device` speaks the protocol specified in :mod:`hw.host.protocol` (stop-and-wait request
and response frames with CRCs) through a *transport*:

* :class:`SerialTransport` -- a board's USB-UART, through pyserial;
* :class:`SimTransport` -- the :class:`hw.host.bridge.HostBridge` gateware in ``amaranth.sim``,
  driven bit by bit through its ``rx`` pin and sampled bit by bit on its ``tx`` pin, so that tests
  run the same host code as a board does.

Example::

    dev = Device(SerialTransport("/dev/ttyUSB0", 1_000_000))
    dev.write_block(0x400, range(100))      # split into frames of at most max_words words
    words = dev.read_block(0x400, 100)

Transports implement ``write(data)``, ``read(n, timeout) -> bytes`` (fewer than ``n`` when
``timeout`` seconds pass; simulated seconds in the simulator), ``discard_input(quiet)`` (drop
bytes until the line has been silent ``quiet`` seconds), ``close()``, and carry ``baud`` and
``latency`` (seconds of round trip to allow on top of the line time).
"""

import collections
import time

from hw.host.config import (
    CMD_READ_BLOCK, CMD_READ_REG, CMD_WRITE_BLOCK, CMD_WRITE_REG, CRC_BYTES, HostConfig,
    REQUEST_SYNC, RESPONSE_HEADER_BYTES, RESPONSE_SYNC, STATUS_BAD_CRC, STATUS_BUS_TIMEOUT,
    STATUS_NAMES, STATUS_OK, STATUS_TIMEOUT, WORD_BYTES, BITS_PER_CHAR,
)


__all__ = ["Device", "DeviceError", "StatusError", "BusTimeoutError", "LinkError",
           "SerialTransport", "SimTransport", "crc16"]


# Errors ------------------------------------------------------------------------------------------

class DeviceError(RuntimeError):
    """Base of every error :class:`Device` raises."""


class StatusError(DeviceError):
    """The board answered a request with an error status that retrying does not cure
    (unknown command, bad length, address out of range, bus timeout)."""

    def __init__(self, message, *, status, cmd, addr, count):
        super().__init__(message)
        self.status, self.cmd, self.addr, self.count = status, cmd, addr, count


class BusTimeoutError(StatusError):
    """A peripheral did not acknowledge. For a write, ``partial`` is true: the words of the frame
    before the failing one may have been written (the board stops a block at the failing word)."""

    def __init__(self, message, *, partial, **kwargs):
        super().__init__(message, **kwargs)
        self.partial = partial


class LinkError(DeviceError):
    """No valid response after every attempt (timeouts, corrupted responses, line errors);
    ``causes`` lists what went wrong on each attempt."""

    def __init__(self, message, causes):
        super().__init__(message)
        self.causes = causes


class _Retry(Exception):
    """One attempt failed in a way another attempt may cure."""


# CRC ---------------------------------------------------------------------------------------------

def _crc_table():
    table = []
    for n in range(256):
        crc = n << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_CRC_TABLE = _crc_table()


def crc16(data, crc=0xFFFF):
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF), as the protocol uses."""
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC_TABLE[(crc >> 8) ^ byte]
    return crc


def _with_crc(data):
    crc = crc16(data)
    return bytes(data) + bytes([crc >> 8, crc & 0xFF])


# Device ------------------------------------------------------------------------------------------

_WRITES = (CMD_WRITE_REG, CMD_WRITE_BLOCK)
_CMD_NAMES = {CMD_READ_REG: "read_reg", CMD_WRITE_REG: "write_reg",
              CMD_READ_BLOCK: "read_block", CMD_WRITE_BLOCK: "write_block"}
#: Statuses that say the request was damaged on the line: sending it again may succeed.
_TRANSIENT = (STATUS_BAD_CRC, STATUS_TIMEOUT)


class Device:
    """The host bridge's register and memory bus, seen from the host.

    Parameters
    ----------
    transport
        A :class:`SerialTransport`, a :class:`SimTransport` or anything with their interface.
    max_words : int
        Longest block of one frame (the board's ``HostConfig.max_words``); longer transfers are
        split. Default: the simulator's config, else :class:`HostConfig`'s default.
    retries : int
        Extra attempts per frame after a timeout, a corrupted or mismatched response, or a
        ``BAD_CRC``/``TIMEOUT`` status. Every request is idempotent (the demo peripherals have
        no read or write side effects), so a frame whose response was lost is simply sent again.
    idle_timeout : float
        The board's idle timeout in seconds (``HostConfig.idle_timeout_us``): after a failed
        attempt the line is left silent this long, so the board is hunting for a new frame.

    Attributes
    ----------
    stats : dict
        ``frames`` sent, ``retries`` made, and ``causes`` of the retries.
    """

    def __init__(self, transport, *, max_words=None, retries=3, idle_timeout=None):
        self.transport = transport
        sim_config = getattr(transport, "config", None)
        default = sim_config if sim_config is not None else HostConfig()
        self.max_words = default.max_words if max_words is None else max_words
        self.retries = retries
        self.idle_timeout = (default.idle_timeout_us * 1e-6 if idle_timeout is None
                             else idle_timeout)
        self._seq = 0
        self.stats = {"frames": 0, "retries": 0, "causes": []}

    def close(self):
        self.transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # Public API ----------------------------------------------------------------------------

    def read_reg(self, addr):
        """The 32-bit word at word address ``addr``."""
        return self._transaction(CMD_READ_REG, addr, 1)[0]

    def write_reg(self, addr, value):
        """Write the 32-bit ``value`` to word address ``addr``."""
        self._transaction(CMD_WRITE_REG, addr, 1, [value])

    def read_block(self, addr, count):
        """``count`` words from ``addr``, ``addr + 1``, ... (split into frames of at most
        :attr:`max_words`)."""
        _check_int("count", count, 0, 1 << 32)
        out = []
        for offset in range(0, count, self.max_words):
            n = min(self.max_words, count - offset)
            out.extend(self._transaction(CMD_READ_BLOCK, addr + offset, n))
        return out

    def write_block(self, addr, words):
        """Write ``words`` to ``addr``, ``addr + 1``, ... (split into frames of at most
        :attr:`max_words`; a failure leaves the frames before it written)."""
        words = [int(w) for w in words]
        for offset in range(0, len(words), self.max_words):
            chunk = words[offset:offset + self.max_words]
            self._transaction(CMD_WRITE_BLOCK, addr + offset, len(chunk), chunk)

    # Frames --------------------------------------------------------------------------------

    def _request(self, cmd, seq, addr, count, words):
        header = (bytes([REQUEST_SYNC, cmd, seq]) + addr.to_bytes(4, "little")
                  + count.to_bytes(2, "little"))
        frame = _with_crc(header)
        if words is not None:
            frame += _with_crc(b"".join(w.to_bytes(WORD_BYTES, "little") for w in words))
        return frame

    def _char_time(self, chars):
        return chars * BITS_PER_CHAR / self.transport.baud

    def _transaction(self, cmd, addr, count, words=None):
        _check_int("addr", addr, 0, 1 << 32)
        if count + addr > 1 << 32:
            raise ValueError(f"{_CMD_NAMES[cmd]}: addr {addr:#x} + {count} words passes 2**32")
        if words is not None:
            for w in words:
                _check_int("word", w, 0, 1 << 32)
        causes = []
        for attempt in range(self.retries + 1):
            seq = self._seq
            self._seq = (self._seq + 1) & 0xFF
            request = self._request(cmd, seq, addr, count, words)
            if attempt:
                self.stats["retries"] += 1
            self.stats["frames"] += 1
            self.transport.write(request)
            try:
                return self._response(cmd, seq, addr, count, len(request))
            except _Retry as e:
                causes.append(str(e))
                self.stats["causes"].append(str(e))
                # Let the board time out whatever it was receiving and drop what is in flight.
                self.transport.discard_input(self.idle_timeout * 1.5 + self._char_time(4))
        raise LinkError(f"{_CMD_NAMES[cmd]} at {addr:#x} ({count} words) failed after "
                        f"{self.retries + 1} attempts: " + "; ".join(causes), causes)

    def _read_exact(self, n, timeout, what):
        data = self.transport.read(n, timeout)
        if len(data) < n:
            raise _Retry(f"timeout waiting for {what} ({len(data)} of {n} bytes)")
        return data

    def _response(self, cmd, seq, addr, count, request_bytes):
        read = cmd in (CMD_READ_REG, CMD_READ_BLOCK)
        data_words = count if read else 0
        latency = getattr(self.transport, "latency", 0.0)
        # Header: our request on the line, the bus work (small), then the header itself.
        header_timeout = (self._char_time(request_bytes + RESPONSE_HEADER_BYTES + 4)
                          + self.idle_timeout + latency)
        # Bytes that may precede our response: line noise and stale responses, within reason.
        budget = 2 * (RESPONSE_HEADER_BYTES + self.max_words * WORD_BYTES + CRC_BYTES) + 64
        skipped = 0
        while True:
            # Hunt for the response sync; anything else is line noise.
            while True:
                b = self._read_exact(1, header_timeout, "a response")
                if b[0] == RESPONSE_SYNC:
                    break
                skipped += 1
                if skipped > budget:
                    raise _Retry(f"no response sync in {skipped} bytes")
            header = b + self._read_exact(RESPONSE_HEADER_BYTES - 1, header_timeout,
                                          "a response header")
            length = int.from_bytes(header[4:6], "little")
            if length > data_words:
                raise _Retry(f"response announces {length} words, expected at most {data_words}")
            rest = self._read_exact(length * WORD_BYTES + CRC_BYTES,
                                    self._char_time(length * WORD_BYTES + CRC_BYTES) * 2
                                    + latency + 1e-3, "response data")
            frame = header + rest
            if crc16(frame) != 0:
                raise _Retry("response CRC mismatch")
            r_cmd, r_seq, status = frame[1], frame[2], frame[3]
            if r_seq != seq or r_cmd != cmd:
                # A late answer to an earlier attempt: skip it, ours may follow.
                skipped += len(frame)
                if skipped > budget:
                    raise _Retry(f"no response with sequence number {seq} in {skipped} bytes")
                continue
            break
        if status in _TRANSIENT:
            raise _Retry(f"board answered {STATUS_NAMES[status]}")
        name = STATUS_NAMES.get(status, f"status {status:#04x}")
        context = dict(status=status, cmd=cmd, addr=addr, count=count)
        if status == STATUS_BUS_TIMEOUT:
            if cmd in _WRITES:
                raise BusTimeoutError(
                    f"{_CMD_NAMES[cmd]} at {addr:#x} ({count} words): bus timeout; the write may "
                    f"be partial (words before the failing one may have been written)",
                    partial=True, **context)
            raise BusTimeoutError(f"{_CMD_NAMES[cmd]} at {addr:#x} ({count} words): bus timeout",
                                  partial=False, **context)
        if status != STATUS_OK:
            raise StatusError(f"{_CMD_NAMES[cmd]} at {addr:#x} ({count} words): board answered "
                              f"{name}", **context)
        if length != data_words:
            raise _Retry(f"response carries {length} words, expected {data_words}")
        body = rest[:-CRC_BYTES]
        return [int.from_bytes(body[n:n + WORD_BYTES], "little")
                for n in range(0, len(body), WORD_BYTES)]


def _check_int(name, value, lo, hi):
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value < hi:
        raise ValueError(f"{name}={value!r} is not valid: expected an integer in "
                         f"[{lo:#x}, {hi:#x})")


# Transports --------------------------------------------------------------------------------------

class SerialTransport:
    """A board's USB-UART through pyserial (8N1).

    Parameters
    ----------
    port : str
        e.g. ``/dev/ttyUSB0`` or ``COM3``.
    baud : int
        The bitstream's ``HostConfig.baud`` (1 Mbaud by default).
    latency : float
        Seconds of USB and OS latency allowed on top of the line time of each response.
    """

    def __init__(self, port, baud=1_000_000, *, latency=0.1):
        import serial  # pyserial; only needed for a real board
        self.baud = baud
        self.latency = latency
        try:
            self._serial = serial.Serial(port, baud, bytesize=8, parity="N", stopbits=1,
                                         timeout=0)
        except serial.SerialException as e:
            raise DeviceError(f"cannot open serial port {port!r}: {e}") from None
        self._serial.reset_input_buffer()

    def write(self, data):
        self._serial.write(data)
        self._serial.flush()

    def read(self, n, timeout):
        self._serial.timeout = timeout
        return self._serial.read(n)

    def discard_input(self, quiet):
        self._serial.timeout = quiet + self.latency
        while self._serial.read(4096):
            pass
        self._serial.reset_input_buffer()

    def close(self):
        self._serial.close()


#: A configuration that keeps the simulator fast: 4 clocks per bit, small memories.
SIM_CONFIG = HostConfig(clock_hz=1_000_000, baud=250_000, idle_timeout_us=200, max_words=16,
                        reg_words=16, mem_words=256)


class SimTransport:
    """The host bridge gateware in ``amaranth.sim``, reached through its UART pins.

    Written bytes become 8N1 levels on ``rx``, one bit per ``config.divisor`` clock cycles;
    ``tx`` is sampled every cycle and decoded at mid-bit. Time is simulated time: a
    ``read(n, timeout)`` runs the simulation until ``n`` bytes arrived or ``timeout`` simulated
    seconds passed.

    Parameters
    ----------
    config : HostConfig
        The link to simulate; default :data:`SIM_CONFIG`.
    core : wiring.Component or None
        The gateware behind the pins (``rx`` and ``tx`` ports), e.g. a :class:`hw.soc.soc.SoC`
        whose ``config.host`` is ``config``; default a :class:`~hw.host.bridge.HostBridge` of
        ``config``.
    """

    latency = 0.0

    def __init__(self, config=None, *, core=None):
        from amaranth.sim import Simulator
        from hw.host.bridge import HostBridge
        self.config = SIM_CONFIG if config is None else config
        self.baud = self.config.clock_hz / self.config.divisor
        self._period = 1 / self.config.clock_hz
        self.dut = dut = HostBridge(config=self.config) if core is None else core
        self._to_rx = collections.deque()     # levels to drive, one per cycle
        self._received = collections.deque()  # decoded bytes
        self.cycles = 0
        self.line_errors = 0
        self._sim = Simulator(dut)
        self._sim.add_clock(self._period)
        self._time = 0.0
        self._sim.add_testbench(self._line, background=True)

    async def _line(self, ctx):
        dut, divisor = self.dut, self.config.divisor
        to_rx, received = self._to_rx, self._received
        # Receiver state: countdown to the next sample point, bits collected so far.
        bit, countdown, shift = -1, 0, 0
        prev = 1
        ctx.set(dut.rx, 1)
        while True:
            ctx.set(dut.rx, to_rx.popleft() if to_rx else 1)
            _, _, tx = await ctx.tick().sample(dut.tx)
            self.cycles += 1
            if bit < 0:
                if prev and not tx:                 # falling edge: a start bit
                    bit, countdown, shift = 0, divisor // 2, 0
            else:
                countdown -= 1
                if countdown == 0:
                    if bit == 0:
                        if tx:                      # glitch, not a start bit
                            bit = -1
                    elif bit <= 8:
                        shift |= tx << (bit - 1)
                    else:
                        if tx:
                            received.append(shift)
                        else:
                            self.line_errors += 1   # framing error: stop bit low
                        bit = -1
                    if bit >= 0:
                        bit += 1
                        countdown = divisor
            prev = tx

    def _run_cycles(self, cycles):
        self._time += cycles * self._period
        self._sim.run_until(self._time)

    def write(self, data):
        divisor = self.config.divisor
        for byte in bytes(data):
            for level in [0] + [(byte >> n) & 1 for n in range(8)] + [1]:
                self._to_rx.extend([level] * divisor)

    def read(self, n, timeout):
        remaining = max(1, round(timeout / self._period))
        chunk = self.config.divisor * BITS_PER_CHAR
        while len(self._received) < n and remaining > 0:
            step = min(chunk, remaining)
            self._run_cycles(step)
            remaining -= step
        return bytes(self._received.popleft() for _ in range(min(n, len(self._received))))

    def discard_input(self, quiet):
        quiet_cycles = max(1, round(quiet / self._period))
        while True:
            before = len(self._received)
            self._run_cycles(quiet_cycles)
            if len(self._received) == before and not self._to_rx:
                break
            self._received.clear()
        self._received.clear()

    def close(self):
        pass
