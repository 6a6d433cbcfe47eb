"""sw.device: the driver over the simulated gateware (bit-level UART pins), checked against the
golden model; retries on corrupted and lost frames; errors; the sw.host CLI."""

import io

import pytest

from golden.host_protocol import BridgeModel, decode_responses, encode_response
from hw.host.config import (
    CMD_READ_REG, CMD_WRITE_BLOCK, STATUS_BAD_ADDRESS, STATUS_BUS_TIMEOUT, STATUS_OK,
)
from sw.device import (
    BusTimeoutError, Device, LinkError, SIM_CONFIG, SimTransport, StatusError, crc16,
)
from sw.host import main as host_main


MEM = SIM_CONFIG.address_map[1]
assert MEM.name == "mem"


class Spy:
    """Wraps a transport: records every byte each way, and can damage or drop bytes."""

    def __init__(self, inner):
        self.inner = inner
        self.baud, self.latency, self.config = inner.baud, inner.latency, inner.config
        self.sent = bytearray()
        self.received = bytearray()
        self.flip_rx = {}   # index of a received byte -> XOR mask
        self.flip_tx = {}   # index of a sent byte -> XOR mask
        self.drop_rx = 0    # received bytes still to lose

    def write(self, data):
        data = bytearray(data)
        for n in range(len(data)):
            data[n] ^= self.flip_tx.pop(len(self.sent) + n, 0)
        self.sent += data
        self.inner.write(bytes(data))

    def read(self, n, timeout):
        out = bytearray()
        while len(out) < n:
            want = n - len(out)
            got = self.inner.read(want, timeout)
            for b in got:
                index = len(self.received)
                self.received.append(b)
                if self.drop_rx:
                    self.drop_rx -= 1
                else:
                    out.append(b ^ self.flip_rx.pop(index, 0))
            if len(got) < want:
                break
        return bytes(out)

    def discard_input(self, quiet):
        self.inner.discard_input(quiet)

    def close(self):
        self.inner.close()


def test_crc_matches_golden():
    from golden.host_protocol import crc16 as golden_crc16
    for data in (b"", b"123456789", bytes(range(256))):
        assert crc16(data) == golden_crc16(data)
    assert crc16(b"123456789") == 0x29B1


def test_registers_and_blocks_against_golden_model():
    spy = Spy(SimTransport())
    dev = Device(spy)
    assert dev.max_words == SIM_CONFIG.max_words == 16

    dev.write_reg(3, 0xDEADBEEF)
    dev.write_reg(15, 0x12345678)
    assert dev.read_reg(3) == 0xDEADBEEF
    assert dev.read_reg(15) == 0x12345678
    block = [(0x9E3779B9 * n) & 0xFFFFFFFF for n in range(40)]
    dev.write_block(MEM.base + 7, block)            # 16 + 16 + 8 words
    assert dev.read_block(MEM.base + 7, 40) == block
    assert dev.read_block(MEM.base, 3) == [0, 0, 0]
    assert dev.stats == {"frames": 4 + 3 + 3 + 1, "retries": 0, "causes": []}

    # The golden model, fed the very bytes the driver sent, answers with the very bytes the
    # gateware sent, and holds the same memory.
    model = BridgeModel(SIM_CONFIG.address_map, max_words=SIM_CONFIG.max_words)
    model.feed(spy.sent)
    assert b"".join(r.encode() for r in model.responses) == bytes(spy.received)
    assert model.memory["regs"][3] == 0xDEADBEEF and model.memory["regs"][15] == 0x12345678
    assert model.memory["mem"][7:47] == block
    seqs = [r.seq for r in decode_responses(spy.received)]
    assert seqs == list(range(len(seqs)))


@pytest.mark.parametrize("damage, cause", [
    ("response data", "response CRC mismatch"),
    ("response header", "response announces 5 words, expected at most 4"),
    ("request header", "board answered bad CRC"),
    ("request payload", "board answered bad CRC"),
    ("lost response", "timeout waiting for a response"),
])
def test_damaged_frame_is_retried(damage, cause):
    spy = Spy(SimTransport())
    dev = Device(spy)
    dev.write_block(MEM.base, [1, 2, 3, 4])         # 11 + 18 bytes sent, 8 received
    if damage == "response data":
        spy.flip_rx[len(spy.received) + 6 + 5] = 0x10      # a data byte of the read below
    elif damage == "response header":
        spy.flip_rx[len(spy.received) + 4] = 0x01          # LEN: 4 words -> 5 words
    elif damage == "request header":
        spy.flip_tx[len(spy.sent) + 4] = 0x80              # ADDR: board answers BAD_CRC
    elif damage == "request payload":
        spy.flip_tx[len(spy.sent) + 11 + 2] = 0x01         # a write payload byte
    else:
        spy.drop_rx = 6 + 16 + 2                           # the whole response
    if damage == "request payload":
        dev.write_block(MEM.base, [5, 6, 7, 8])
        expected = [5, 6, 7, 8]
    else:
        expected = [1, 2, 3, 4]
    assert dev.read_block(MEM.base, 4) == expected
    assert dev.stats["retries"] == 1 and dev.stats["causes"][0].startswith(cause), dev.stats
    assert dev.read_block(MEM.base, 4) == expected   # and the link is in step afterwards


def test_address_error_is_not_retried():
    dev = Device(SimTransport())
    with pytest.raises(StatusError, match=r"read_reg at 0x10000 \(1 words\): board answered "
                                          r"address out of range") as info:
        dev.read_reg(0x10000)
    assert info.value.status == STATUS_BAD_ADDRESS and dev.stats["retries"] == 0
    with pytest.raises(ValueError, match="addr=-1 is not valid"):
        dev.read_reg(-1)
    with pytest.raises(ValueError, match="word=4294967296 is not valid"):
        dev.write_reg(0, 1 << 32)


class Scripted:
    """A transport that answers each request with the next scripted response bytes."""
    baud, latency, config = 1_000_000, 0.0, None

    def __init__(self, answers):
        self.answers = list(answers)
        self.pending = b""
        self.requests = []

    def write(self, data):
        self.requests.append(bytes(data))
        seq = data[2]
        answer = self.answers.pop(0)
        self.pending += answer(seq) if callable(answer) else answer

    def read(self, n, timeout):
        out, self.pending = self.pending[:n], self.pending[n:]
        return out

    def discard_input(self, quiet):
        self.pending = b""

    def close(self):
        pass


def test_bus_timeout_on_write_is_reported_partial():
    t = Scripted([lambda seq: encode_response(CMD_WRITE_BLOCK, seq, STATUS_OK),
                  lambda seq: encode_response(CMD_WRITE_BLOCK, seq, STATUS_BUS_TIMEOUT)])
    dev = Device(t, max_words=2)
    with pytest.raises(BusTimeoutError, match="may be partial") as info:
        dev.write_block(0x100, [1, 2, 3, 4, 5])
    assert info.value.partial and info.value.addr == 0x102 and len(t.requests) == 2
    t = Scripted([lambda seq: encode_response(CMD_READ_REG, seq, STATUS_BUS_TIMEOUT)])
    with pytest.raises(BusTimeoutError) as info:
        Device(t).read_reg(5)
    assert not info.value.partial


def test_gives_up_after_retries_with_causes():
    stale = lambda seq: encode_response(CMD_READ_REG, (seq - 1) & 0xFF, STATUS_OK, [7])
    t = Scripted([b"", b"\x00garbage", stale])
    with pytest.raises(LinkError, match=r"read_reg at 0x5 \(1 words\) failed after 3 attempts: "
                                        r"timeout waiting for a response") as info:
        Device(t, retries=2).read_reg(5)
    assert len(info.value.causes) == 3
    # A stale response (an earlier sequence number) before ours is skipped.
    t = Scripted([lambda seq: stale(seq) + encode_response(CMD_READ_REG, seq, STATUS_OK, [9])])
    assert Device(t).read_reg(5) == 9


def test_cli_over_simulator(capsys):
    out = io.StringIO()
    assert host_main(["--sim", "dump", hex(MEM.base), "6"], out=out) == 0
    assert out.getvalue() == (f"{MEM.base:#010x}: 00000000 00000000 00000000 00000000\n"
                              f"{MEM.base + 4:#010x}: 00000000 00000000\n")
    assert host_main(["--sim", "write-reg", "2", "0x55"]) == 0
    assert host_main(["--sim", "read-reg", "0x10000"]) == 1
    assert capsys.readouterr().err.startswith("error: read_reg at 0x10000 (1 words): board "
                                              "answered address out of range")
