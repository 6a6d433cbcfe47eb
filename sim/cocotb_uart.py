"""A :class:`sw.device.Device` transport on a cocotb simulation's UART pins, so that the host
code a board runs (``sw.device``, ``sw.soc``) drives the emitted Verilog unchanged.

The host code is blocking; it runs in a thread started with :func:`cocotb.task.bridge`, and each
transport call hands a coroutine back to the simulator with :func:`cocotb.task.resume`.
Timeouts are simulated seconds at ``clock_hz``, as the gateware counts them.
"""

import cocotb
from cocotb.task import resume
from cocotb.triggers import ClockCycles

from sim.tb.host_bridge import Host, send_char
from sim.tb.host_line import char_levels


__all__ = ["UartTransport"]


class UartTransport:
    """The DUT's ``rx``/``tx`` pins at ``clock_hz / divisor`` baud (8N1).

    Create it in a cocotb coroutine (it starts the receiver there); call its methods from a
    bridge thread only.
    """

    latency = 0.0

    def __init__(self, dut, *, divisor, clock_hz):
        self.divisor = divisor
        self.baud = clock_hz / divisor
        self._cycle_s = 1 / clock_hz
        self._line = Host(dut, divisor, rng=None)
        self._taken = 0         # bytes of ``self._line.received`` already read
        cocotb.start_soon(self._line.receive())

    def _cycles(self, seconds):
        return max(1, round(seconds / self._cycle_s))

    def write(self, data):
        resume(self._send)(bytes(data))

    def read(self, n, timeout):
        return resume(self._read)(n, self._cycles(timeout))

    def discard_input(self, quiet):
        resume(self._discard)(self._cycles(quiet))

    def close(self):
        pass

    async def _send(self, data):
        for byte in data:
            await send_char(self._line.dut, char_levels(byte), self.divisor)

    async def _read(self, n, cycles):
        received = self._line.received
        step = 10 * self.divisor
        while len(received) - self._taken < n and cycles > 0:
            await ClockCycles(self._line.dut.clk, min(step, cycles))
            cycles -= step
        data = bytes(received[self._taken:self._taken + n])
        self._taken += len(data)
        return data

    async def _discard(self, quiet_cycles):
        received = self._line.received
        while True:
            before = len(received)
            await ClockCycles(self._line.dut.clk, quiet_cycles)
            if len(received) == before:
                break
        self._taken = len(received)
