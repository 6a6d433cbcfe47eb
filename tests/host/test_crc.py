# amaranth: UnusedElaboratable=no
"""CRC-16/CCITT-FALSE: the reference against the published check value, the hardware against the
reference byte by byte, and the zero-remainder property the receiver relies on."""

import random

from amaranth.sim import Simulator

from golden.host_protocol import crc16
from hw.host.crc import CRC16, crc16_update_matrix


def test_reference_check_value():
    # The catalogue check value of CRC-16/CCITT-FALSE (a.k.a. CRC-16/IBM-3740).
    assert crc16(b"123456789") == 0x29B1
    assert crc16(b"") == 0xFFFF


def test_message_followed_by_its_crc_leaves_zero():
    rng = random.Random(1)
    for length in (0, 1, 2, 11, 300):
        message = bytes(rng.getrandbits(8) for _ in range(length))
        crc = crc16(message)
        assert crc16(message + bytes([crc >> 8, crc & 0xFF])) == 0
        # A single flipped bit anywhere is caught.
        corrupted = bytearray(message + bytes([crc >> 8, crc & 0xFF]))
        corrupted[rng.randrange(len(corrupted))] ^= 1 << rng.randrange(8)
        assert crc16(corrupted) != 0


def test_update_matrix_is_the_bitwise_update():
    taps = crc16_update_matrix()
    rng = random.Random(2)
    for _ in range(500):
        crc, byte = rng.getrandbits(16), rng.getrandbits(8)
        bits = crc | byte << 16
        parallel = sum((sum(bits >> i & 1 for i in t) & 1) << n for n, t in enumerate(taps))
        assert parallel == crc16(bytes([byte]), crc)


def test_hardware_matches_reference_byte_by_byte():
    dut = CRC16()
    rng = random.Random(3)
    messages = [bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 40))) for _ in range(20)]
    messages.append(b"123456789")

    async def bench(ctx):
        for message in messages:
            ctx.set(dut.clear, 1)
            await ctx.tick()
            ctx.set(dut.clear, 0)
            assert ctx.get(dut.crc) == 0xFFFF
            for n, byte in enumerate(message):
                # Idle cycles in between must not change the register.
                if rng.random() < 0.3:
                    await ctx.tick()
                ctx.set(dut.data, byte)
                ctx.set(dut.en, 1)
                await ctx.tick()
                ctx.set(dut.en, 0)
                assert ctx.get(dut.crc) == crc16(message[:n + 1])
            crc = ctx.get(dut.crc)
            assert not ctx.get(dut.zero)
            for byte in (crc >> 8, crc & 0xFF):
                ctx.set(dut.data, byte)
                ctx.set(dut.en, 1)
                await ctx.tick()
            ctx.set(dut.en, 0)
            assert ctx.get(dut.zero)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
