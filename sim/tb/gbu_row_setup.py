"""cocotb testbench of ``RowSetup``: every output payload equals the golden one bit for bit,
without stalls (where the run also takes exactly ``latency + n`` cycles: one item per cycle)
and under random valid/ready stalls.

Ports (Amaranth's flattened names): ``i`` (one (Gaussian, row) per transfer), ``o`` (its
setup). Vectors from the caller (``tests/gbu``): ``inputs`` and ``expected`` as packed payload
words, ``fields`` (name, offset, width) of the output layout for readable mismatches,
``latency``.
"""

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

from sim.cocotb_stream import StreamSink, StreamSource
from sim.cocotb_util import start_clock_and_reset, test_rng, test_vectors


def _fields(word, fields):
    return {name: (word >> offset) & ((1 << width) - 1) for name, offset, width in fields}


async def _run(dut, *, stall_in, stall_out, salt):
    """Drive every input through; return (output words, cycles from the first input transfer
    to the last output transfer inclusive)."""
    vectors = test_vectors()
    rng = test_rng(salt)
    source = StreamSource(dut, "i", rng=rng, stall=stall_in)
    sink = StreamSink(dut, "o", rng=rng, stall=stall_out)
    await start_clock_and_reset(dut)
    seen = {"first_in": None, "last_out": None}

    async def watch():
        cycle = 0
        while True:
            await ReadOnly()
            if seen["first_in"] is None and source.valid.value and source.ready.value:
                seen["first_in"] = cycle
            if sink.valid.value and sink.ready.value:
                seen["last_out"] = cycle
            await RisingEdge(dut.clk)
            cycle += 1

    watcher = cocotb.start_soon(watch())
    sender = cocotb.start_soon(source.send(vectors["inputs"]))
    words = await sink.receive(len(vectors["expected"]))
    await sender
    watcher.cancel()
    return words, seen["last_out"] - seen["first_in"] + 1


def _compare(words, vectors):
    expected = vectors["expected"]
    assert len(words) == len(expected)
    for n, (got, want) in enumerate(zip(words, expected)):
        assert got == want, (f"item {n}: got {_fields(got, vectors['fields'])}, expected "
                             f"{_fields(want, vectors['fields'])}")


@cocotb.test()
async def exact_at_full_rate(dut):
    vectors = test_vectors()
    words, cycles = await _run(dut, stall_in=0.0, stall_out=0.0, salt="none")
    _compare(words, vectors)
    want = vectors["latency"] + len(vectors["expected"])
    assert cycles == want, f"{cycles} cycles, expected {want}"


@cocotb.test()
async def exact_under_random_stalls(dut):
    vectors = test_vectors()
    for stall_in, stall_out in ((0.3, 0.4), (0.1, 0.8)):
        words, _ = await _run(dut, stall_in=stall_in, stall_out=stall_out,
                              salt=f"{stall_in}/{stall_out}")
        _compare(words, vectors)
