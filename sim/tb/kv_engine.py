"""cocotb testbench of ``KVCacheEngine``: every response word equals the golden one, and the
error flags too, without and with random valid/ready stalls; a read-out streams one row per
cycle.

Ports (Amaranth's flattened names): ``cmd`` (commands), ``rsp`` (responses), ``errors``,
``length``. Vectors from the caller (``tests/kv/test_hw_cocotb_engine.py``): ``commands`` and
``expected`` as packed words, the final ``errors`` word, and ``last_read`` (how many responses
the final command, a READ of a full layer, yields).
"""

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

from hw.kv.cache import READ_LATENCY
from sim.cocotb_stream import StreamSink, StreamSource
from sim.cocotb_util import start_clock_and_reset, test_rng, test_vectors


async def _session(dut, commands, expected, *, stall, salt):
    rng = test_rng(salt)
    source = StreamSource(dut, "cmd", rng=rng, stall=stall)
    # A prefill's writes answer nothing for as long as they take to send.
    sink = StreamSink(dut, "rsp", rng=rng, stall=stall, timeout_cycles=10_000 + 4 * len(commands))
    sender = cocotb.start_soon(source.send(commands))
    got = await sink.receive(len(expected))
    await sender
    for n, (g, e) in enumerate(zip(got, expected)):
        assert g == e, f"response {n}: got {g:#x}, expected {e:#x}"


async def _check_errors(dut, vectors):
    for _ in range(4):
        await RisingEdge(dut.clk)
    await ReadOnly()
    assert not dut.rsp__valid.value, "a response beyond the expected ones"
    assert int(dut.errors.value) == vectors["errors"], \
        f"errors {int(dut.errors.value):#x}, expected {vectors['errors']:#x}"


@cocotb.test()
async def matches_golden_under_stalls(dut):
    vectors = test_vectors()
    await start_clock_and_reset(dut)
    await _session(dut, vectors["commands"], vectors["expected"], stall=0.3, salt="stalls")
    await _check_errors(dut, vectors)


@cocotb.test()
async def reads_one_row_per_cycle(dut):
    """Without stalls, the final READ's ``count`` rows arrive in ``count - 1 + READ_LATENCY``
    cycles (and one for the source)."""
    vectors = test_vectors()
    commands, expected, count = vectors["commands"], vectors["expected"], vectors["last_read"]
    await start_clock_and_reset(dut)
    await _session(dut, commands[:-1], expected[:-count], stall=0.0, salt="fill")
    start = cocotb.utils.get_sim_time("ns")
    await _session(dut, commands[-1:], expected[-count:], stall=0.0, salt="read")
    cycles = (cocotb.utils.get_sim_time("ns") - start) / 10
    assert cycles <= count + READ_LATENCY, f"{count} rows took {cycles} cycles"
    await _check_errors(dut, vectors)
