"""cocotb testbench of ``StreamFIFO``: every item out equals the item in, in order, under stalls.

Ports: ``i`` / ``o`` streams of ``width``-bit payloads, ``level`` (items held).
"""

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

from sim.cocotb_stream import StreamSink, StreamSource
from sim.cocotb_util import config_params, start_clock_and_reset, test_rng


async def _transfer(dut, *, count, source_stall, sink_stall, salt):
    params = config_params()
    rng = test_rng(salt)
    mask = (1 << params["width"]) - 1
    extremes = [0, mask, 1, 1 << (params["width"] - 1)]
    items = (extremes + [rng.getrandbits(params["width"]) for _ in range(count)])[:count]
    source = StreamSource(dut, "i", rng=rng, stall=source_stall)
    sink = StreamSink(dut, "o", rng=rng, stall=sink_stall)
    max_level = 0

    async def watch_level():
        nonlocal max_level
        while True:
            await ReadOnly()
            max_level = max(max_level, int(dut.level.value))
            await RisingEdge(dut.clk)

    watcher = cocotb.start_soon(watch_level())
    sender = cocotb.start_soon(source.send(items))
    received = await sink.receive(count)
    await sender
    watcher.cancel()
    assert received == items, next(f"item {n}: got {g:#x}, sent {s:#x}"
                                   for n, (g, s) in enumerate(zip(received, items)) if g != s)
    assert max_level <= params["depth"], f"level {max_level} exceeds depth {params['depth']}"
    return max_level


@cocotb.test()
async def full_throughput(dut):
    """No stalls: one item per cycle (every other cycle at depth 1 and 2, as Amaranth's
    buffered FIFO does it) after the first."""
    count = 200
    cycles_per_item = 2 if config_params()["depth"] <= 2 else 1
    await start_clock_and_reset(dut)
    start = cocotb.utils.get_sim_time("ns")
    await _transfer(dut, count=count, source_stall=0.0, sink_stall=0.0, salt="full")
    cycles = (cocotb.utils.get_sim_time("ns") - start) / 10
    assert cycles <= count * cycles_per_item + 4, f"{count} items took {cycles} cycles"


@cocotb.test()
async def random_stalls(dut):
    await start_clock_and_reset(dut)
    for source_stall, sink_stall in ((0.5, 0.5), (0.1, 0.8), (0.8, 0.1), (0.9, 0.9)):
        await _transfer(dut, count=300, source_stall=source_stall, sink_stall=sink_stall,
                        salt=f"{source_stall}/{sink_stall}")


@cocotb.test()
async def fills_to_depth(dut):
    """A sink that waits lets the FIFO fill to exactly ``depth`` and then apply backpressure."""
    depth = config_params()["depth"]
    await start_clock_and_reset(dut)
    source = StreamSource(dut, "i")
    dut.o__ready.value = 0
    items = [n & ((1 << config_params()["width"]) - 1) for n in range(depth + 1)]
    sender = cocotb.start_soon(source.send(items))
    for _ in range(depth + 20):
        await RisingEdge(dut.clk)
    await ReadOnly()
    assert int(dut.level.value) == depth, f"level {int(dut.level.value)}, depth {depth}"
    assert not dut.i__ready.value, "full FIFO still accepts"
    await RisingEdge(dut.clk)
    received = await StreamSink(dut, "o").receive(depth + 1)
    await sender
    assert received == items
