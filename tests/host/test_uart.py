# amaranth: UnusedElaboratable=no
"""UARTTx and UARTRx in amaranth.sim: exact line timing, loopback at several divisors (odd ones
too), random bytes under consumer stalls, framing errors, glitches, overrun, baud mismatch."""

import random

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from hw.host.uart import UARTRx, UARTTx
from sim.pysim_stream import stream_get, stream_put
from sim.tb.host_line import LineError, char_levels, decode_line


def _run(dut, *benches, process=None):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for bench in benches:
        sim.add_testbench(bench)
    if process is not None:
        sim.add_process(process)
    sim.run()


def _record_tx(tx, cycles, levels):
    async def record(ctx):
        for _ in range(cycles):
            levels.append(ctx.get(tx))
            await ctx.tick()
    return record


@pytest.mark.parametrize("divisor", [1, 4, 7])
def test_tx_line_is_exact_and_gapless(divisor):
    """Bytes offered back to back leave as characters with every bit exactly ``divisor`` cycles
    and no idle time between characters."""
    data = [0x00, 0xFF, 0x55, 0xA5, 0x01, 0x80] + [random.Random(divisor).getrandbits(8)
                                                   for _ in range(10)]
    dut = UARTTx(divisor=divisor)
    levels = []

    async def feed(ctx):
        for byte in data:
            await stream_put(ctx, dut.i, byte)

    cycles = 10 * divisor * len(data) + 4 * divisor + 10
    _run(dut, feed, _record_tx(dut.tx, cycles, levels))
    chars = decode_line(levels, divisor)
    assert [b for _, b in chars] == data
    starts = [c for c, _ in chars]
    assert all(b - a == 10 * divisor for a, b in zip(starts, starts[1:])), starts
    assert levels[0] == 1 and levels[-1] == 1


def test_line_decoder_rejects_a_stretched_bit():
    """The strict decoder used against the transmitter can fail."""
    levels = [1] * 3 + [lv for lv in char_levels(0x3C) for _ in range(4)] + [1] * 3
    assert decode_line(levels, 4) == [(3, 0x3C)]
    levels.insert(10, levels[10])
    with pytest.raises(LineError):
        decode_line(levels, 4)


class Loopback(wiring.Component):
    """UARTTx driving UARTRx, for loopback tests."""

    def __init__(self, divisor):
        self.tx = UARTTx(divisor=divisor)
        self.rx = UARTRx(divisor=divisor)
        super().__init__({"i": wiring.In(self.tx.i.signature.flip()),
                          "o": wiring.Out(self.rx.o.signature)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.tx = self.tx
        m.submodules.rx = self.rx
        wiring.connect(m, wiring.flipped(self.i), self.tx.i)
        wiring.connect(m, self.rx.o, wiring.flipped(self.o))
        m.d.comb += self.rx.rx.eq(self.tx.tx)
        return m


@pytest.mark.parametrize("divisor", [4, 5, 8, 13, 25])
def test_loopback_random_bytes(divisor):
    rng = random.Random(divisor)
    data = [0x00, 0xFF] + [rng.getrandbits(8) for _ in range(40)]
    dut = Loopback(divisor)
    received = []
    errors = []

    async def feed(ctx):
        for byte in data:
            await stream_put(ctx, dut.i, byte, rng=rng, stall=0.3)

    async def drain(ctx):
        # Stalls far shorter than a character: the receiver must not overrun.
        for _ in data:
            received.append(await stream_get(ctx, dut.o, rng=rng, stall=0.5))

    async def watch(ctx):
        async for _, _, framing, overrun in ctx.tick().sample(dut.rx.framing_error,
                                                              dut.rx.overrun):
            if framing or overrun:
                errors.append((framing, overrun))

    _run(dut, feed, drain, process=watch)
    assert received == data
    assert errors == []


def _drive(levels_per_bit, divisor, *, stretch=1.0):
    """Per-cycle pin levels for bits given at ``divisor * stretch`` cycles each."""
    out = []
    t = 0.0
    for level in levels_per_bit:
        t += divisor * stretch
        out += [level] * (round(t) - len(out))
    return out


def _receive(divisor, pin_levels, *, ready=True):
    """Run UARTRx on a per-cycle pin waveform; return (bytes, framing pulses, overrun pulses,
    cycles at which bytes became valid)."""
    dut = UARTRx(divisor=divisor)
    result = {"bytes": [], "framing": 0, "overrun": 0, "valid_at": []}

    async def bench(ctx):
        ctx.set(dut.o.ready, ready)
        for cycle, level in enumerate(pin_levels + [1] * (12 * divisor)):
            ctx.set(dut.rx, level)
            _, _, valid, payload, framing, overrun = await ctx.tick().sample(
                dut.o.valid, dut.o.payload, dut.framing_error, dut.overrun)
            if valid and ready:
                result["bytes"].append(payload)
                result["valid_at"].append(cycle)
            result["framing"] += framing
            result["overrun"] += overrun

    _run(dut, bench)
    return result


@pytest.mark.parametrize("divisor", [4, 7, 16])
def test_rx_latency_matches_the_docstring(divisor):
    idle = 5
    levels = [1] * idle + _drive(char_levels(0x96), divisor)
    r = _receive(divisor, levels)
    assert r["bytes"] == [0x96]
    # The pin falls in cycle ``idle``; ``valid_at`` is the first cycle in which ``o.valid`` is high
    # (``sample`` gives the values a clock edge sees, i.e. those of the cycle it ends).
    assert r["valid_at"][0] - idle == 9 * divisor + divisor // 2 + 3


@pytest.mark.parametrize("divisor", [4, 9])
def test_rx_framing_error_drops_the_byte_and_recovers(divisor):
    bits = (char_levels(0x11) + char_levels(0x22, stop=0) + [1] * 3 + char_levels(0x33)
            + [0] * 25 + [1] * 2 + char_levels(0x44))
    r = _receive(divisor, [1] * 3 + _drive(bits, divisor))
    assert r["bytes"] == [0x11, 0x33, 0x44]
    # One for the bad stop bit, one for the break (however long): not a stream of 0x00 bytes.
    assert r["framing"] == 2


def test_rx_ignores_a_glitch_shorter_than_half_a_bit():
    divisor = 8
    levels = [1] * 4 + [0] * 3 + [1] * 20 + _drive(char_levels(0x5A), divisor)
    r = _receive(divisor, levels)
    assert r["bytes"] == [0x5A] and r["framing"] == 0


def test_rx_overrun_keeps_the_first_byte():
    divisor = 4
    r = _receive(divisor, [1] * 2 + _drive(char_levels(0x01) + char_levels(0x02), divisor),
                 ready=False)
    assert r["overrun"] == 1 and r["framing"] == 0


@pytest.mark.parametrize("divisor,stretch", [(16, 1.02), (16, 0.98), (25, 1.03), (25, 0.97)])
def test_rx_tolerates_baud_mismatch(divisor, stretch):
    rng = random.Random(divisor)
    data = [rng.getrandbits(8) for _ in range(8)] + [0x00, 0xFF]
    bits = [level for byte in data for level in char_levels(byte)]
    r = _receive(divisor, [1] * 5 + _drive(bits, divisor, stretch=stretch))
    assert r["bytes"] == data and r["framing"] == 0


@pytest.mark.parametrize("cls,divisor", [(UARTTx, 0), (UARTRx, 3), (UARTRx, 4.0)])
def test_divisor_is_validated(cls, divisor):
    with pytest.raises(ValueError, match="divisor"):
        cls(divisor=divisor)
