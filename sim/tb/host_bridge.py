"""cocotb testbench of ``HostBridge`` through its UART pins: a host in Python drives ``rx`` bit by
bit and decodes ``tx``, and every response byte must be the one golden.host_protocol predicts.

Ports: ``rx`` (in), ``tx`` (out). Vectors (from ``tests/host/test_cocotb_host.py``):

``divisor``, ``idle_cycles``
    Clock cycles per bit, and the bridge's idle timeout in cycles.
``transactions``
    A list of ``{"send": [...], "expect": hex}``: the host sends the items (``{"bytes": hex}``,
    ``{"idle": true}`` for a silence past the idle timeout, ``{"bad_stop": byte}`` for a character
    with a low stop bit, which the bridge must drop), then waits until it has received exactly
    the ``expect`` bytes (stop-and-wait, as the protocol requires).
"""

import cocotb
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge

from sim.cocotb_util import start_clock_and_reset, test_rng, test_vectors
from sim.tb.host_line import char_levels, decode_line


async def send_char(dut, levels, divisor):
    for level in levels:
        dut.rx.value = level
        await ClockCycles(dut.clk, divisor)


class Host:
    """The host's UART: a transmitter on ``rx`` and a receiver on ``tx``."""

    def __init__(self, dut, divisor, rng):
        self.dut = dut
        self.divisor = divisor
        self.rng = rng
        self.received = bytearray()
        self.levels = []        # ``tx`` at every clock cycle, for the strict timing check
        dut.rx.value = 1

    async def record(self):
        while True:
            await RisingEdge(self.dut.clk)
            await ReadOnly()
            self.levels.append(int(self.dut.tx.value))

    async def receive(self):
        d = self.divisor
        while True:
            await FallingEdge(self.dut.tx)
            await ClockCycles(self.dut.clk, d // 2)
            bits = []
            for _ in range(9):
                await ClockCycles(self.dut.clk, d)
                bits.append(int(self.dut.tx.value))
            assert bits[8] == 1, "bridge sent a low stop bit"
            self.received.append(sum(b << n for n, b in enumerate(bits[:8])))

    async def send(self, items, idle_cycles):
        d = self.divisor
        for item in items:
            if "idle" in item:
                await ClockCycles(self.dut.clk, idle_cycles + 2 * 10 * d)
            elif "bad_stop" in item:
                await send_char(self.dut, char_levels(item["bad_stop"], stop=0), d)
                # The line must rise before the bridge's receiver looks for a start bit again.
                self.dut.rx.value = 1
                await ClockCycles(self.dut.clk, 2 * d)
            else:
                for byte in bytes.fromhex(item["bytes"]):
                    await send_char(self.dut, char_levels(byte), d)
                    # Inter-byte gaps well under the idle timeout are part of normal traffic.
                    if self.rng.random() < 0.2:
                        await ClockCycles(self.dut.clk, self.rng.randrange(1, 3 * d))

    async def wait_for(self, total, limit_cycles):
        waited = 0
        while len(self.received) < total:
            await ClockCycles(self.dut.clk, self.divisor)
            waited += self.divisor
            assert waited < limit_cycles, (f"got {len(self.received)} of {total} response "
                                           f"bytes in {limit_cycles} cycles")


@cocotb.test()
async def traffic_matches_golden(dut):
    vectors = test_vectors()
    d = vectors["divisor"]
    host = Host(dut, d, test_rng("host"))
    await start_clock_and_reset(dut)
    cocotb.start_soon(host.record())
    cocotb.start_soon(host.receive())

    expected = bytearray()
    frames = []             # (offset, length) of each response, for the gap check
    for transaction in vectors["transactions"]:
        await host.send(transaction["send"], vectors["idle_cycles"])
        response = bytes.fromhex(transaction["expect"])
        if response:
            frames.append((len(expected), len(response)))
        expected += response
        await host.wait_for(len(expected), 4 * vectors["idle_cycles"]
                            + 20 * d * (len(response) + 8))
        assert host.received == expected, (f"response bytes differ: got "
                                           f"{bytes(host.received).hex()}, expected "
                                           f"{bytes(expected).hex()}")

    # Nothing more comes out; then the strict check of the line's timing.
    await ClockCycles(dut.clk, 2 * vectors["idle_cycles"])
    assert host.received == expected, "bridge sent extra bytes"
    chars = decode_line(host.levels, d)
    assert bytes(b for _, b in chars) == bytes(expected)
    for offset, length in frames:
        starts = [c for c, _ in chars[offset:offset + length]]
        gaps = {b - a for a, b in zip(starts, starts[1:])}
        assert gaps <= {10 * d}, f"response at byte {offset} has idle gaps: {sorted(gaps)}"
