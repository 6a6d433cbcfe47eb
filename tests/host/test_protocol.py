# amaranth: UnusedElaboratable=no
"""HostProtocol on a bus with a register bank, a memory window and a peripheral that never
answers, driven at byte-stream level (no UART) in amaranth.sim and compared byte for byte with
golden.host_protocol.BridgeModel: valid traffic, then garbage, corrupt, truncated, oversized and
out-of-range frames (each answered or ignored as specified, with no hang and no state change),
then valid traffic again."""

import random

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from golden.host_protocol import BridgeModel, decode_responses, encode_request
from hw.host.bus import BusDecoder
from hw.host.peripherals import MemoryWindow, RegisterBank
from hw.host.config import (
    CMD_READ_BLOCK, CMD_READ_REG, CMD_WRITE_BLOCK, CMD_WRITE_REG, REQUEST_SYNC,
    STATUS_BAD_ADDRESS, STATUS_BAD_CRC, STATUS_BAD_LENGTH, STATUS_BUS_TIMEOUT, STATUS_OK,
    STATUS_TIMEOUT, STATUS_UNKNOWN_CMD, allocate_regions,
)
from hw.host.protocol import HostProtocol
from sim.pysim_stream import stream_get, stream_put


REGIONS = (("regs", 16), ("mem", 256), ("dead", 4))
MAX_WORDS = 64
IDLE_TIMEOUT = 64
BUS_TIMEOUT = 16
PLACED = allocate_regions(REGIONS)
BASE = {r.name: r.base for r in PLACED}


class Harness(wiring.Component):
    """HostProtocol on a decoder with ``regs``, ``mem`` and ``dead`` (left unconnected: it never
    acknowledges)."""

    def __init__(self):
        self.protocol = HostProtocol(regions=PLACED, max_words=MAX_WORDS,
                                     idle_timeout_cycles=IDLE_TIMEOUT,
                                     bus_timeout_cycles=BUS_TIMEOUT)
        self.bank = RegisterBank(words=16)
        self.window = MemoryWindow(words=256)
        super().__init__({"i": In(self.protocol.i.signature.flip()),
                          "o": Out(self.protocol.o.signature)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.protocol = self.protocol
        m.submodules.decoder = decoder = BusDecoder(REGIONS)
        m.submodules.bank = self.bank
        m.submodules.window = self.window
        wiring.connect(m, wiring.flipped(self.i), self.protocol.i)
        wiring.connect(m, self.protocol.o, wiring.flipped(self.o))
        wiring.connect(m, self.protocol.bus, decoder.bus)
        wiring.connect(m, decoder.regs, self.bank.bus)
        wiring.connect(m, decoder.mem, self.window.bus)
        return m


IDLE = None     # an event of a script: the host stays silent for longer than the idle timeout


def run_script(script, *, seed=0, in_stall=0.3, out_stall=0.3):
    """Feed ``script`` (byte strings and IDLE events) to the hardware and to the model.

    Returns ``(model, received bytes)`` after checking that the hardware sent exactly the model's
    response bytes and nothing more, and that its registers and memory equal the model's.
    """
    model = BridgeModel(PLACED, max_words=MAX_WORDS, dead=("dead",))
    for event in script:
        model.idle() if event is IDLE else model.feed(event)
    expected = b"".join(r.encode() for r in model.responses)

    dut = Harness()
    rng = random.Random(seed)
    received = bytearray()
    state = {}
    total_in = sum(len(e) for e in script if e is not IDLE)
    limit = 40 * (total_in + len(expected)) + 200 * (len(script) + 1) + 2000

    async def feed(ctx):
        for event in script:
            if event is IDLE:
                await ctx.tick().repeat(IDLE_TIMEOUT + 8)
            else:
                for byte in event:
                    await stream_put(ctx, dut.i, byte, rng=rng, stall=in_stall)

    async def drain(ctx):
        for _ in expected:
            received.append(await stream_get(ctx, dut.o, rng=rng, stall=out_stall))
        # Nothing more comes out, however long we wait.
        ctx.set(dut.o.ready, 1)
        for _ in range(3 * IDLE_TIMEOUT):
            _, _, valid = await ctx.tick().sample(dut.o.valid)
            assert not valid, f"unexpected byte after {len(received)} expected ones"
        state["regs"] = [ctx.get(dut.bank.regs[n]) for n in range(16)]
        state["mem"] = [ctx.get(dut.window.memory.data[n]) for n in range(256)]

    async def watchdog(ctx):
        # One tick at a time: a pending ``repeat()`` would complain when the simulation ends.
        for _ in range(limit):
            await ctx.tick()
        raise AssertionError(f"no progress after {limit} cycles: received {bytes(received)!r}, "
                             f"expected {expected!r}")

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(feed)
    sim.add_testbench(drain)
    sim.add_process(watchdog)
    sim.run()

    assert bytes(received) == expected, (decode_responses(received), model.responses)
    assert state["regs"] == model.memory["regs"]
    assert state["mem"] == model.memory["mem"]
    return model, bytes(received)


def valid_traffic(rng, seq0, count):
    """Random valid commands on ``regs`` and ``mem``, each followed by nothing (the host waits
    for the response, which back-pressure stands in for)."""
    frames = []
    for n in range(count):
        seq = (seq0 + n) & 0xFF
        kind = rng.choice(("rr", "wr", "rb", "wb", "wb"))
        if kind in ("rr", "wr"):
            region = rng.choice(("regs", "mem"))
            addr = BASE[region] + rng.randrange(16)
            frames.append(encode_request(CMD_READ_REG, seq, addr, count=1) if kind == "rr" else
                          encode_request(CMD_WRITE_REG, seq, addr, words=[rng.getrandbits(32)]))
        else:
            length = rng.randrange(1, MAX_WORDS + 1)
            addr = BASE["mem"] + rng.randrange(256 - length + 1)
            frames.append(encode_request(CMD_READ_BLOCK, seq, addr, count=length) if kind == "rb"
                          else encode_request(CMD_WRITE_BLOCK, seq, addr,
                                              words=[rng.getrandbits(32) for _ in range(length)]))
    return frames


def test_valid_reads_and_writes():
    rng = random.Random(1)
    words = [0xDEADBEEF, 0, 0xFFFFFFFF, 0x01234567]
    script = [
        encode_request(CMD_WRITE_REG, 1, BASE["regs"] + 3, words=[0xCAFEF00D]),
        encode_request(CMD_READ_REG, 2, BASE["regs"] + 3, count=1),
        encode_request(CMD_WRITE_BLOCK, 3, BASE["mem"] + 252, words=words),
        encode_request(CMD_READ_BLOCK, 4, BASE["mem"] + 250, count=6),
        # A block that spans the whole register bank.
        encode_request(CMD_WRITE_BLOCK, 5, BASE["regs"], words=list(range(100, 116))),
        encode_request(CMD_READ_BLOCK, 6, BASE["regs"], count=16),
        *valid_traffic(rng, 7, 12),
    ]
    model, _ = run_script(script, seed=1)
    assert all(r.status == STATUS_OK for r in model.responses)
    assert model.responses[1].words == (0xCAFEF00D,)
    assert model.responses[3].words == (0, 0) + tuple(words)
    assert model.responses[5].words == tuple(range(100, 116))


def test_full_speed_without_stalls():
    rng = random.Random(2)
    run_script(valid_traffic(rng, 0, 6), seed=2, in_stall=0.0, out_stall=0.0)


def _flip(frame, position, bit=0):
    out = bytearray(frame)
    out[position] ^= 1 << bit
    return bytes(out)


def test_errors_are_answered_and_change_nothing():
    rng = random.Random(3)
    write = encode_request(CMD_WRITE_BLOCK, 0x40, BASE["mem"] + 8, words=[0x11111111] * 8)
    script = [
        encode_request(CMD_WRITE_BLOCK, 1, BASE["mem"], words=list(range(1, 33))),
        encode_request(CMD_WRITE_REG, 2, BASE["regs"] + 1, words=[0x5555AAAA]),
        # Garbage with no sync byte: ignored, never answered.
        bytes(b for b in (rng.getrandbits(8) for _ in range(50)) if b != REQUEST_SYNC), IDLE,
        # Bad header CRC (the LEN field corrupted): drained, then BAD_CRC.
        _flip(write, 7, 3), IDLE,
        # Bad payload CRC: BAD_CRC at once, memory unchanged.
        _flip(write, 20, 5),
        # Unknown command, with the right header CRC.
        encode_request(0x7E, 3, BASE["mem"], count=1), IDLE,
        # LEN 0, LEN > max_words, LEN 2 on a register command.
        encode_request(CMD_READ_BLOCK, 4, BASE["mem"], count=0), IDLE,
        encode_request(CMD_WRITE_BLOCK, 5, BASE["mem"], words=[7] * (MAX_WORDS + 1)), IDLE,
        encode_request(CMD_READ_REG, 6, BASE["regs"], count=2), IDLE,
        # Out of range: past the end of mem, straddling, in the gap after regs, far away.
        encode_request(CMD_WRITE_BLOCK, 7, BASE["mem"] + 250, words=[9] * 7), IDLE,
        encode_request(CMD_READ_REG, 8, BASE["regs"] + 16, count=1), IDLE,
        encode_request(CMD_READ_REG, 9, 0xFFFFFFFF, count=1), IDLE,
        # Truncated in the header and in the payload: TIMEOUT.
        write[:6], IDLE,
        write[:30], IDLE,
        # A peripheral that never answers: BUS_TIMEOUT, for a read and for a write.
        encode_request(CMD_READ_REG, 10, BASE["dead"], count=1),
        encode_request(CMD_WRITE_BLOCK, 11, BASE["dead"], words=[1, 2]),
        # A valid frame followed by trailing junk: answered; the junk is hunted through.
        encode_request(CMD_READ_REG, 12, BASE["regs"] + 1, count=1) + b"\x00\x13\x37", IDLE,
        # Valid traffic works again.
        encode_request(CMD_READ_BLOCK, 13, BASE["mem"], count=40),
        encode_request(CMD_WRITE_REG, 14, BASE["regs"] + 15, words=[0x0BADF00D]),
    ]
    model, _ = run_script(script, seed=3)
    statuses = [(r.seq, r.status) for r in model.responses]
    assert statuses == [
        (1, STATUS_OK), (2, STATUS_OK),
        (0x40, STATUS_BAD_CRC), (0x40, STATUS_BAD_CRC),
        (3, STATUS_UNKNOWN_CMD),
        (4, STATUS_BAD_LENGTH), (5, STATUS_BAD_LENGTH), (6, STATUS_BAD_LENGTH),
        (7, STATUS_BAD_ADDRESS), (8, STATUS_BAD_ADDRESS), (9, STATUS_BAD_ADDRESS),
        (0x40, STATUS_TIMEOUT), (0x40, STATUS_TIMEOUT),
        (10, STATUS_BUS_TIMEOUT), (11, STATUS_BUS_TIMEOUT),
        (12, STATUS_OK), (13, STATUS_OK), (14, STATUS_OK),
    ]
    assert model.responses[16].words == tuple(range(1, 33)) + (0,) * 8


def _mutate(rng, frame):
    """One random corruption of a frame, as a line or a confused host might produce it."""
    kind = rng.choice(("flip", "truncate", "drop", "insert", "garbage", "duplicate"))
    if kind == "flip":
        return [_flip(frame, rng.randrange(len(frame)), rng.randrange(8)), IDLE]
    if kind == "truncate":
        return [frame[:rng.randrange(1, len(frame))], IDLE]
    if kind == "drop":
        n = rng.randrange(len(frame))
        return [frame[:n] + frame[n + 1:], IDLE]
    if kind == "insert":
        n = rng.randrange(len(frame))
        return [frame[:n] + bytes([rng.getrandbits(8)]) + frame[n:], IDLE]
    if kind == "garbage":
        return [bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 40))), IDLE, frame]
    return [frame + frame, IDLE]


@pytest.mark.parametrize("seed", [10, 11, 12])
def test_fuzzed_traffic_matches_the_model(seed):
    """Random valid frames, about half of them corrupted at random, and garbage with sync bytes
    in it: every response and the final memory agree with the model, and the last frames, which
    are valid, are all answered OK."""
    rng = random.Random(seed)
    script = []
    for frame in valid_traffic(rng, seed * 16, 20):
        script += _mutate(rng, frame) if rng.random() < 0.5 else [frame]
        if rng.random() < 0.2:
            script += [bytes([REQUEST_SYNC] + [rng.getrandbits(8) for _ in range(20)]), IDLE]
    tail = valid_traffic(rng, 0xF0, 3)
    model, _ = run_script(script + [IDLE] + tail, seed=seed)
    assert [r.status for r in model.responses[-3:]] == [STATUS_OK] * 3
    assert len({r.status for r in model.responses}) >= 3


def test_register_read_latency_matches_the_docstring():
    """Latency from the last request byte to the first response byte (see HostProtocol)."""
    dut = Harness()
    frame = encode_request(CMD_READ_REG, 1, BASE["regs"], count=1)
    cycles = {}

    async def bench(ctx):
        for byte in frame:
            await stream_put(ctx, dut.i, byte)
        start = 0
        while not ctx.get(dut.o.valid):
            await ctx.tick()
            start += 1
        cycles["latency"] = start

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    # 2 + B, with B = 1: one register-bank access, acknowledged at once.
    assert cycles["latency"] == 3


@pytest.mark.parametrize("kwargs,match", [
    ({"regions": ()}, "regions"),
    ({"regions": (("regs", 4),)}, "regions"),
    ({"max_words": 1024}, "max_words"),
    ({"idle_timeout_cycles": 1}, "idle_timeout_cycles"),
    ({"bus_timeout_cycles": 1.5}, "bus_timeout_cycles"),
])
def test_parameters_are_validated(kwargs, match):
    params = {"regions": PLACED, "max_words": 8, "idle_timeout_cycles": 100,
              "bus_timeout_cycles": 8, **kwargs}
    with pytest.raises((ValueError, TypeError), match=match):
        HostProtocol(**params)
