"""Render tiles on the Verilog of :class:`hw.gbu.core.GaussianBlendingUnit` (cocotb, through
:func:`sim.runner.run`): what the ``rtl`` backend of ``python -m sw.render`` runs.

Tiles go through the core in chunks, one simulation each (the Verilator build is cached), so a
frame shows progress and a chunk's vectors stay small; each chunk starts from reset, so the
measured cycles include one pipeline fill per chunk.
"""

import itertools
import json
import tempfile
from pathlib import Path

from hw.gbu.core import GaussianBlendingUnit, pixel_layout, splat_layout, tile_layout
from sim.gbu_vectors import splat_payloads
from sim.packing import pack, pack_all, unpack
from sim.runner import run


__all__ = ["RTLPixels", "render_tiles"]

#: Tiles per simulation.
CHUNK = 64


class RTLPixels:
    """What the core gave for a list of tiles: ``pixels[n]``, the 256 pixels of the ``n``-th
    tile in row-major order, each a :class:`amaranth.lib.data.Const` of
    :func:`~hw.gbu.core.pixel_layout` (``color``, ``t``, ``n_contrib``, ``n_blended``, raw);
    ``cycles``, the clock cycles the simulations ran (reset and pipeline fills included)."""

    def __init__(self, pixels, cycles):
        self.pixels = pixels
        self.cycles = cycles


def _tile_vector(config, splats, tiles, t):
    gx = tiles.grid[0]
    origin = ((t % gx) * config.tile, (t // gx) * config.tile)
    ids = tiles.tile(t)
    header = {"count": len(ids), "cols": min(config.tile, splats.width - origin[0]),
              "rows": min(config.tile, splats.height - origin[1])}
    return {"header": pack(tile_layout(config), header),
            "splats": pack_all(splat_layout(config), splat_payloads(config, splats, ids, origin))}


def render_tiles(config, splats, tiles, indices, *, progress=None):
    """Tiles ``indices`` of ``tiles`` (:class:`golden.splat_binning.TileLists` of ``splats``)
    through the core of ``config``; ``progress`` wraps the iterable of tile indices
    (``tqdm.tqdm`` for example), which is taken a chunk at a time. Returns :class:`RTLPixels`."""
    indices = list(indices)
    too_long = [t for t in indices if len(tiles.tile(t)) > config.max_gaussians]
    if too_long:
        raise ValueError(f"tile {too_long[0]} lists {len(tiles.tile(too_long[0]))} Gaussians: "
                         f"more than max_gaussians={config.max_gaussians}")
    layout = pixel_layout(config)
    pending = iter((progress or iter)(indices))
    pixels, cycles = [], 0
    with tempfile.TemporaryDirectory(prefix="gbu-frame-") as scratch:
        out = Path(scratch) / "frame.json"
        while chunk := list(itertools.islice(pending, CHUNK)):
            vectors = {"tiles": [_tile_vector(config, splats, tiles, t) for t in chunk]}
            run(GaussianBlendingUnit(config=config), name="gbu_core",
                testbench="sim.tb.gbu_frame", config=config, vectors=vectors,
                design_name="gbu", extra_env={"GBU_FRAME_JSON": str(out)})
            got = json.loads(out.read_text())
            words = got["pixels"]
            pixels += [[unpack(layout, w) for w in words[256 * n:256 * (n + 1)]]
                       for n in range(len(chunk))]
            cycles += got["cycles"]
    return RTLPixels(pixels, cycles)
