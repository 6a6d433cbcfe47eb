"""cocotb testbench that renders tiles on ``GaussianBlendingUnit``'s Verilog: the tiles' headers
and Gaussians go in, every pixel that comes out is written with the cycle count to the JSON
file named by ``GBU_FRAME_JSON`` (:mod:`sim.gbu_frame` reads it; there is no expectation here:
``tests/gbu`` checks the same core against the model).

Vectors: ``tiles``, each ``{"header": word, "splats": [word, ...]}`` packed as the ``tile`` and
``splats`` streams carry them.
"""

import json
import os

import cocotb
from cocotb.triggers import RisingEdge

from sim.cocotb_stream import StreamSink, StreamSource
from sim.cocotb_util import start_clock_and_reset, test_vectors


#: Cycles without a pixel after which the sink gives up: above the longest tile of a
#: ``max_gaussians`` list on one lane (4095 Gaussians x 256 pixels).
_TIMEOUT_CYCLES = 1 << 21


@cocotb.test()
async def render(dut):
    tiles = test_vectors()["tiles"]
    headers = StreamSource(dut, "tile", timeout_cycles=_TIMEOUT_CYCLES)
    splats = StreamSource(dut, "splats", timeout_cycles=_TIMEOUT_CYCLES)
    sink = StreamSink(dut, "pixels", timeout_cycles=_TIMEOUT_CYCLES)
    await start_clock_and_reset(dut)
    cycles = 0

    async def count():
        nonlocal cycles
        while True:
            await RisingEdge(dut.clk)
            cycles += 1

    counter = cocotb.start_soon(count())
    senders = [cocotb.start_soon(headers.send([t["header"] for t in tiles])),
               cocotb.start_soon(splats.send([w for t in tiles for w in t["splats"]]))]
    pixels = await sink.receive(256 * len(tiles))
    counter.cancel()
    for sender in senders:
        await sender
    with open(os.environ["GBU_FRAME_JSON"], "w") as f:
        json.dump({"pixels": pixels, "cycles": cycles}, f)
