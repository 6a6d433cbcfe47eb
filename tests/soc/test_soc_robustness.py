"""The SoC's host link under abuse, in amaranth.sim through its UART pins: garbage, damaged,
truncated and oversized frames, unknown commands and addresses outside the map are answered as
hw/host/protocol.py specifies (the golden BridgeModel predicts every response byte) or ignored;
writes to read-only words change nothing; the link never hangs; and afterwards the accelerators'
windows, signals and KV rows read as before, and a GEMM and a KV step give the golden results."""

import random

import pytest
import torch

from golden.gemm import matmul_int, requantize
from golden.host_protocol import BridgeModel, encode_request
from golden.kv_cache import KVCache
from golden.lacache import make_policy
from hw.host.config import (
    BITS_PER_CHAR, CMD_READ_BLOCK, CMD_READ_REG, CMD_WRITE_BLOCK, REQUEST_SYNC,
    STATUS_BAD_ADDRESS, STATUS_BAD_CRC, STATUS_BAD_LENGTH, STATUS_BUS_TIMEOUT, STATUS_TIMEOUT,
    STATUS_UNKNOWN_CMD, Region,
)
from hw.soc.soc import SoC
from sw.device import BusTimeoutError, Device, SimTransport
from sw.soc import SIM_SOC_CONFIG, SoCClient

CONFIG = SIM_SOC_CONFIG
KV = CONFIG.kv
ROW = KV.kv_heads * KV.head_dim


def _board():
    """A simulated SoC, the means to send it raw bytes, and the golden models to compare with."""
    soc = SoC(config=CONFIG)
    transport = SimTransport(CONFIG.host, core=soc)
    amap = soc.address_map()
    # No retries: any response the driver does not expect is a failure, not a second chance.
    client = SoCClient(Device(transport, max_words=CONFIG.max_words, retries=0), amap)
    regions = {r["name"]: Region(r["name"], r["base"], r["size"]) for r in amap["regions"]}
    model = BridgeModel(tuple(regions.values()), max_words=CONFIG.max_words)
    golden = KVCache(KV.layers, KV.kv_heads, KV.head_dim, make_policy(KV), dtype=torch.int64)
    return {"client": client, "transport": transport, "regions": regions, "model": model,
            "golden_kv": golden, "gen": torch.Generator().manual_seed(3)}


def _kv_step(board):
    kv_rows = [[torch.randint(0, 1 << KV.elem_bits, (ROW,), generator=board["gen"])
                for _ in "kv"] for _ in range(KV.layers)]
    board["client"].kv_step([(k.tolist(), v.tolist()) for k, v in kv_rows])
    golden = board["golden_kv"]
    for layer, (k, v) in enumerate(kv_rows):
        golden.append(layer, k.reshape(KV.kv_heads, 1, KV.head_dim),
                      v.reshape(KV.kv_heads, 1, KV.head_dim))
    golden.compact()


def _golden_rows(board, layer):
    k, v, pos = board["golden_kv"].read(layer)
    return [(p, k[:, j].flatten().tolist(), v[:, j].flatten().tolist())
            for j, p in enumerate(pos.tolist())]


def _snapshot(board):
    """What a rejected frame must not change: every window's status word, the signal and info
    words, and the rows of the last KV layer (of the class that compacts differently)."""
    client, regions = board["client"], board["regions"]
    windows = {s["region"] for acc in client.map["accelerators"].values()
               for s in acc["streams"].values()}
    words = {name: client.device.read_block(r.base, 1 if name in windows else r.size)
             for name, r in regions.items()}
    return words, client.kv_read(KV.layers - 1)


def _raw(board, data, *, expect_statuses):
    """Send ``data`` as is, leave the line idle, and check that the SoC answers exactly what the
    golden BridgeModel answers (no response at all for garbage), with the given statuses."""
    transport, model = board["transport"], board["model"]
    before = len(model.responses)
    model.feed(data)
    model.idle()
    new = model.responses[before:]
    assert [r.status for r in new] == expect_statuses
    expected = b"".join(r.encode() for r in new)
    char = BITS_PER_CHAR / transport.baud
    idle = CONFIG.idle_timeout_us * 1e-6
    transport.write(data)
    # One byte more than expected: the read runs to its timeout, so a byte too many shows.
    got = transport.read(len(expected) + 1, (len(data) + len(expected) + 2) * char + 2 * idle)
    assert got == expected, (data.hex(), got.hex(), expected.hex())


def _state_before_abuse(board):
    words, last = _snapshot(board)
    assert last == [] and words["kv_signals"] == [0, 0]
    assert words["gemm_a"] == [CONFIG.window_depth] and words["kv_rsp"] == [0]
    return words, last


def _garbage(board):
    rng = random.Random(5)
    quiet = bytes(rng.choice([b for b in range(256) if b != REQUEST_SYNC]) for _ in range(32))
    _raw(board, quiet, expect_statuses=[])
    # Random bytes holding syncs: a frame starts at the first, and its random header fails.
    noisy = bytearray(rng.randbytes(24))
    noisy[3] = noisy[17] = REQUEST_SYNC
    _raw(board, bytes(noisy), expect_statuses=[STATUS_BAD_CRC])
    # A sync among the last bytes: a header that never completes.
    _raw(board, rng.randbytes(5).replace(bytes([REQUEST_SYNC]), b"\0") + b"\xa5\x01\x07",
         expect_statuses=[STATUS_TIMEOUT])


def _damaged_truncated_and_oversized_frames(board):
    max_words = CONFIG.max_words
    a = board["regions"]["gemm_a"].base
    write = bytearray(encode_request(CMD_WRITE_BLOCK, 0x21, a + 1, words=[1, 2, 3]))
    header_crc_bad = bytes(write[:4]) + bytes([write[4] ^ 0x10]) + bytes(write[5:])
    payload_crc_bad = bytes(write[:-1]) + bytes([write[-1] ^ 0x01])
    _raw(board, header_crc_bad, expect_statuses=[STATUS_BAD_CRC])
    _raw(board, payload_crc_bad, expect_statuses=[STATUS_BAD_CRC])
    _raw(board, bytes(write[:6]), expect_statuses=[STATUS_TIMEOUT])          # inside the header
    _raw(board, bytes(write[:11 + 5]), expect_statuses=[STATUS_TIMEOUT])     # inside the payload
    # LEN past max_words: rejected at the header; the payload is drained whatever its length
    # (a few words of it here, to keep the simulation short).
    too_long = encode_request(CMD_WRITE_BLOCK, 0x22, a + 1, words=list(range(max_words + 1)))
    _raw(board, too_long[:11 + 4 * 3], expect_statuses=[STATUS_BAD_LENGTH])
    _raw(board, encode_request(CMD_READ_BLOCK, 0x23, a, count=max_words + 1),
         expect_statuses=[STATUS_BAD_LENGTH])
    _raw(board, encode_request(CMD_READ_BLOCK, 0x24, a, count=0),
         expect_statuses=[STATUS_BAD_LENGTH])
    _raw(board, encode_request(CMD_READ_REG, 0x25, a, count=2),
         expect_statuses=[STATUS_BAD_LENGTH])
    for cmd in (0x00, 0xFF):
        _raw(board, encode_request(cmd, 0x26, a, words=[7]), expect_statuses=[STATUS_UNKNOWN_CMD])


def _addresses_outside_the_map(board):
    regions = board["regions"]
    last = max(r.end for r in regions.values())
    gemm_a, gemm_w = regions["gemm_a"], regions["gemm_w"]
    assert regions["info"].end < regions["gemm_cmd"].base          # there is a gap to hit
    cases = [
        (CMD_READ_REG, last, 1),                                  # past every region
        (CMD_READ_REG, 0xFFFF_FFFF, 1),                           # the top of the address space
        (CMD_READ_BLOCK, regions["info"].end + 3, 2),             # inside the gap
        (CMD_READ_BLOCK, regions["info"].end - 1, 2),             # from a region into the gap
        (CMD_WRITE_BLOCK, gemm_a.end - 3, 6),                     # a window into the next one
        (CMD_WRITE_BLOCK, gemm_w.end - 2, 4),                     # overruns the window's span
    ]
    for n, (cmd, addr, count) in enumerate(cases):
        frame = (encode_request(cmd, 0x30 + n, addr, words=list(range(count)))
                 if cmd == CMD_WRITE_BLOCK else encode_request(cmd, 0x30 + n, addr, count=count))
        _raw(board, frame, expect_statuses=[STATUS_BAD_ADDRESS])


def _read_only_words_ignore_writes(board):
    device, regions = board["client"].device, board["regions"]
    # Signal words, info words and window status words acknowledge a write and keep their value.
    device.write_block(regions["kv_signals"].base, [0xDEAD_BEEF, 0x1234_5678])
    device.write_block(regions["info"].base, [0, 0])
    for name in ("gemm_a", "kv_rsp"):
        device.write_reg(regions[name].base, 0x5555)
    # Reading an output window that holds nothing makes the bus wait: a bus timeout, no data.
    with pytest.raises(BusTimeoutError) as info:
        device.read_block(regions["gemm_c"].base + 1, 1)
    assert info.value.status == STATUS_BUS_TIMEOUT and not info.value.partial


def _golden_jobs(board):
    client = board["client"]
    gen = board["gen"]
    a = torch.randint(-128, 128, (2, 2), generator=gen)
    w = torch.randint(-128, 128, (2, 2), generator=gen)
    multiplier, shift = torch.randint(1 << 13, 1 << 15, (2,), generator=gen), 21
    want = requantize(matmul_int(a, w), multiplier, torch.full((2,), shift),
                      rounding=CONFIG.gemm.rounding)
    assert client.gemm(a, w, multiplier, shift).tolist() == want.tolist()
    _kv_step(board)
    assert client.kv_read(KV.layers - 1) == _golden_rows(board, KV.layers - 1)
    assert client.signals("kv")["errors"] == 0
    assert client.device.stats["retries"] == 0


def _input_window_overrun(board):
    """More items than an input window takes make the bus wait for room that never comes (no
    GEMM command consumes them): the write ends in a bus timeout with the items before it
    queued, and the link goes on. Last, as it leaves those items queued."""
    client, regions = board["client"], board["regions"]
    base = regions["gemm_a"].base
    with pytest.raises(BusTimeoutError) as info:
        client.device.write_block(base + 1, [0] * (CONFIG.window_depth + 1))
    assert info.value.partial
    assert client.device.read_reg(base) == 0
    info_region = regions["info"]
    assert client.device.read_block(info_region.base, info_region.size) == [
        client.map["info"]["magic"], client.map["info"]["map_crc32"]]


def test_abuse_changes_nothing_and_never_hangs():
    """One SoC throughout: each phase continues from the state the previous one left, which is
    the point (rejected frames must leave it as it was)."""
    board = _board()
    before = _state_before_abuse(board)
    _garbage(board)
    _damaged_truncated_and_oversized_frames(board)
    _addresses_outside_the_map(board)
    _read_only_words_ignore_writes(board)
    assert _snapshot(board) == before
    _golden_jobs(board)
    _input_window_overrun(board)
