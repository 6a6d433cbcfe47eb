"""HostBridge end to end in cocotb, on its emitted Verilog: a Python host drives the UART pins
bit by bit; every response byte and the final memory contents come from golden.host_protocol."""

import random

import pytest

from golden.host_protocol import BridgeModel, encode_request
from hw.host.config import (
    CMD_READ_BLOCK, CMD_READ_REG, CMD_WRITE_BLOCK, CMD_WRITE_REG, STATUS_OK, HostConfig,
)
from hw.host.bridge import HostBridge
from sim.runner import SimulationFailure, run


#: 4 clocks per bit keeps the simulation short; a 1 KiB memory window and 64-word blocks.
CONFIG = HostConfig(clock_hz=4_000_000, baud=1_000_000, idle_timeout_us=40, bus_timeout_cycles=64,
                    max_words=64, reg_words=16, mem_words=256)
BASE = {r.name: r.base for r in CONFIG.address_map}


def _flip(frame, position, bit):
    out = bytearray(frame)
    out[position] ^= 1 << bit
    return bytes(out)


def _steps(rng):
    """Lists of host actions, each followed by waiting for the responses they cause."""
    mem = BASE["mem"]
    block = [rng.getrandbits(32) for _ in range(CONFIG.max_words)]
    write = encode_request(CMD_WRITE_BLOCK, 9, mem + 100, words=block[:20])
    steps = [
        [encode_request(CMD_WRITE_REG, 1, BASE["regs"] + 5, words=[0x12345678])],
        [encode_request(CMD_READ_REG, 2, BASE["regs"] + 5, count=1)],
        [encode_request(CMD_WRITE_BLOCK, 3, mem, words=block)],
        [encode_request(CMD_READ_BLOCK, 4, mem, count=CONFIG.max_words)],
        # Errors: bad header CRC (drained until idle), bad payload CRC, garbage, truncation,
        # out of range, a character with a framing error (dropped by the UART: a short frame).
        [_flip(write, 8, 1), "idle"],
        [_flip(write, 40, 6)],
        [bytes(rng.getrandbits(8) for _ in range(30)), "idle"],
        [write[:25], "idle"],
        [encode_request(CMD_READ_BLOCK, 5, mem + 250, count=10), "idle"],
        [write[:30], ("bad_stop", write[30]), write[31:], "idle"],
        # Valid again.
        [write],
        [encode_request(CMD_READ_BLOCK, 6, mem + 96, count=28)],
    ]
    for n in range(6):
        addr = mem + rng.randrange(CONFIG.mem_words - 8)
        steps.append([encode_request(CMD_WRITE_BLOCK, 10 + n, addr,
                                     words=[rng.getrandbits(32) for _ in range(8)])])
    # Read everything back.
    for n in range(0, CONFIG.mem_words, CONFIG.max_words):
        steps.append([encode_request(CMD_READ_BLOCK, 20 + n // CONFIG.max_words, mem + n,
                                     count=CONFIG.max_words)])
    steps.append([encode_request(CMD_READ_BLOCK, 30, BASE["regs"], count=CONFIG.reg_words)])
    return steps


def _vectors(seed):
    rng = random.Random(seed)
    model = BridgeModel(CONFIG.address_map, max_words=CONFIG.max_words)
    transactions = []
    for step in _steps(rng):
        before = len(model.responses)
        send = []
        for item in step:
            if item == "idle":
                model.idle()
                send.append({"idle": True})
            elif isinstance(item, tuple):
                send.append({"bad_stop": item[1]})   # the bridge never sees this byte
            else:
                model.feed(item)
                send.append({"bytes": item.hex()})
        expect = b"".join(r.encode() for r in model.responses[before:])
        transactions.append({"send": send, "expect": expect.hex()})
    return model, {"divisor": CONFIG.divisor, "idle_cycles": CONFIG.idle_timeout_cycles,
                   "transactions": transactions}


def _run(vectors):
    return run(HostBridge(config=CONFIG), name="host_bridge", testbench="sim.tb.host_bridge",
               config=CONFIG, vectors=vectors, design_name="host-bridge", seed=5)


def test_bridge_through_uart_pins_matches_golden():
    model, vectors = _vectors(seed=1)
    statuses = [r.status for r in model.responses]
    assert statuses.count(STATUS_OK) >= 12 and len(set(statuses)) >= 4
    # The final read-back returns the model's memory, which the bridge must match word for word.
    readback = [w for r in model.responses[-5:-1] for w in r.words]
    assert readback == model.memory["mem"]
    assert _run(vectors) == 1


def test_bridge_testbench_catches_a_wrong_byte():
    _, vectors = _vectors(seed=1)
    last = vectors["transactions"][1]
    last["expect"] = last["expect"][:-2] + f"{int(last['expect'][-2:], 16) ^ 1:02x}"
    vectors["transactions"] = vectors["transactions"][:2]
    with pytest.raises(SimulationFailure, match="1 of 1 cocotb tests failed"):
        _run(vectors)
