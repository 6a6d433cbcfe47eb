"""Generic cocotb testbench for a core with valid/ready stream ports: drives every input stream
with its packed payloads, takes every output stream, and compares each output word with the
expected one; a stall-free run also checks cycle counts between transfers.

Vectors (built by the caller with :func:`sim.packing.pack_all`):
``inputs``: ``{port: [word, ...]}``; ``outputs``: ``{port: [word, ...]}`` expected, in order;
``spans`` (optional): ``[[start_port, start_index, end_port, end_index, cycles], ...]``: in the
stall-free run, transfer ``end_index`` of ``end_port`` comes ``cycles - 1`` cycles after transfer
``start_index`` of ``start_port`` (so ``cycles`` counts both ends).
"""

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

from sim.cocotb_stream import StreamSink, StreamSource
from sim.cocotb_util import start_clock_and_reset, test_rng, test_vectors


async def _run(dut, *, stall_in, stall_out, salt):
    vectors = test_vectors()
    rng = test_rng(salt)
    sources = {port: StreamSource(dut, port, rng=rng, stall=stall_in)
               for port in vectors["inputs"]}
    sinks = {port: StreamSink(dut, port, rng=rng, stall=stall_out)
             for port in vectors["outputs"]}
    await start_clock_and_reset(dut)
    transfers = {port: [] for port in (*sources, *sinks)}

    async def watch():
        cycle = 0
        while True:
            await ReadOnly()
            for port, side in (*sources.items(), *sinks.items()):
                if side.valid.value and side.ready.value:
                    transfers[port].append(cycle)
            await RisingEdge(dut.clk)
            cycle += 1

    watcher = cocotb.start_soon(watch())
    senders = [cocotb.start_soon(sources[port].send(words))
               for port, words in vectors["inputs"].items()]
    receivers = {port: cocotb.start_soon(sinks[port].receive(len(words)))
                 for port, words in vectors["outputs"].items()}
    received = {port: await task for port, task in receivers.items()}
    for sender in senders:
        await sender
    watcher.cancel()
    for port, words in vectors["outputs"].items():
        got = received[port]
        bad = [n for n, (g, e) in enumerate(zip(got, words)) if g != e]
        assert not bad, (f"{port}: {len(bad)} of {len(words)} words differ; first at {bad[0]}: "
                         f"got {got[bad[0]]:#x}, expected {words[bad[0]]:#x}")
    return transfers


@cocotb.test()
async def exact_and_cycle_counts(dut):
    transfers = await _run(dut, stall_in=0.0, stall_out=0.0, salt="none")
    for start_port, start, end_port, end, cycles in test_vectors().get("spans", []):
        got = transfers[end_port][end] - transfers[start_port][start] + 1
        assert got == cycles, (f"{start_port}[{start}] to {end_port}[{end}]: {got} cycles, "
                               f"the model says {cycles}")


@cocotb.test()
async def exact_under_random_stalls(dut):
    for stall_in, stall_out in ((0.3, 0.4), (0.8, 0.1), (0.1, 0.8)):
        await _run(dut, stall_in=stall_in, stall_out=stall_out, salt=f"{stall_in}/{stall_out}")
