"""cocotb testbench of ``GaussianBlendingUnit``: tile by tile, every output pixel equals the
golden one, without and with random valid/ready stalls; the stall-free run's cycles per tile are
written for the caller.

Ports (Amaranth's flattened names): ``tile`` (headers), ``splats`` (Gaussians), ``pixels``.
Vectors from the caller (``tests/gbu/test_cocotb_gbu.py``, :func:`sim.gbu_vectors.core_vectors`):
per tile the packed ``header``, ``splats`` and expected ``pixels`` words and the model's
``cycles``; ``pixel_fields`` to print a mismatch. With ``GBU_CYCLES_JSON`` set, the stall-free
run writes there ``per_tile``, the cycles from each header's transfer to the tile's first pixel
(its shading, the drain of the lanes and the read-out latency; a tile's shading overlaps the
previous tile's drain and read-out), and ``total``, from the first header to the last pixel.
"""

import json
import os

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

from sim.cocotb_util import start_clock_and_reset, test_rng, test_vectors
from sim.tb.gbu_frame import shade_tiles


def _describe(word, fields):
    return ", ".join(f"{name}={(word >> offset) & ((1 << width) - 1)}"
                     for name, offset, width in fields)


async def _run(dut, *, stall_in, stall_out, salt):
    """Send every tile; return (pixel words, cycles of the header transfers, cycles of the pixel
    transfers)."""
    tiles = test_vectors()["tiles"]
    await start_clock_and_reset(dut)
    seen = {"header": [], "pixel": []}

    async def watch():
        cycle = 0
        while True:
            await ReadOnly()
            if dut.tile__valid.value and dut.tile__ready.value:
                seen["header"].append(cycle)
            if dut.pixels__valid.value and dut.pixels__ready.value:
                seen["pixel"].append(cycle)
            await RisingEdge(dut.clk)
            cycle += 1

    watcher = cocotb.start_soon(watch())
    words = await shade_tiles(dut, tiles, rng=test_rng(salt), stall_in=stall_in,
                              stall_out=stall_out, timeout_cycles=100_000)
    watcher.cancel()
    return words, seen["header"], seen["pixel"]


def _compare(words):
    vectors = test_vectors()
    fields = vectors["pixel_fields"]
    for n, tile in enumerate(vectors["tiles"]):
        for p, want in enumerate(tile["pixels"]):
            got = words[256 * n + p]
            assert got == want, (f"tile {n} pixel {p} (row {p // 16}, x {p % 16}): got "
                                 f"{_describe(got, fields)}; expected {_describe(want, fields)}")


@cocotb.test()
async def exact_and_cycles(dut):
    words, headers, pixels = await _run(dut, stall_in=0.0, stall_out=0.0, salt="none")
    _compare(words)
    path = os.environ.get("GBU_CYCLES_JSON")
    if path:
        with open(path, "w") as f:
            json.dump({"per_tile": [first - header
                                    for header, first in zip(headers, pixels[::256])],
                       "total": pixels[-1] - headers[0] + 1}, f)


@cocotb.test()
async def exact_under_random_stalls(dut):
    for stall_in, stall_out in ((0.3, 0.4), (0.7, 0.1), (0.1, 0.7)):
        words, _, _ = await _run(dut, stall_in=stall_in, stall_out=stall_out,
                                 salt=f"{stall_in}/{stall_out}")
        _compare(words)
