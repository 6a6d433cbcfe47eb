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


async def shade_tiles(dut, tiles, *, rng=None, stall_in=0.0, stall_out=0.0,
                      timeout_cycles=_TIMEOUT_CYCLES):
    """Send every tile's header and Gaussians (``tiles`` as the vectors hold them) and return the
    pixel words that come out, 256 per tile; ``rng`` and the stall probabilities as
    :class:`~sim.cocotb_stream.StreamSource` and :class:`~sim.cocotb_stream.StreamSink` take
    them. The clock must be running."""
    headers = StreamSource(dut, "tile", rng=rng, stall=stall_in, timeout_cycles=timeout_cycles)
    splats = StreamSource(dut, "splats", rng=rng, stall=stall_in, timeout_cycles=timeout_cycles)
    sink = StreamSink(dut, "pixels", rng=rng, stall=stall_out, timeout_cycles=timeout_cycles)
    senders = [cocotb.start_soon(headers.send([t["header"] for t in tiles])),
               cocotb.start_soon(splats.send([w for t in tiles for w in t["splats"]]))]
    pixels = await sink.receive(256 * len(tiles))
    for sender in senders:
        await sender
    return pixels


@cocotb.test()
async def render(dut):
    tiles = test_vectors()["tiles"]
    await start_clock_and_reset(dut)
    cycles = 0

    async def count():
        nonlocal cycles
        while True:
            await RisingEdge(dut.clk)
            cycles += 1

    counter = cocotb.start_soon(count())
    pixels = await shade_tiles(dut, tiles)
    counter.cancel()
    with open(os.environ["GBU_FRAME_JSON"], "w") as f:
        json.dump({"pixels": pixels, "cycles": cycles}, f)
