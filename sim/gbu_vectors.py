"""Stimuli and expectations of the Gaussian Blending Unit's tests, from golden.gbu_model, as
plain Python integers (JSON-ready for the cocotb testbench, payload-ready for amaranth.sim).

A tile case is what the core takes and gives for one tile: the header (``count``, ``cols``,
``rows``), the Gaussians in list order as the model quantizes them (raw ``mx, my, a, b, c, o,
color`` and the row range ``rows_above, rows_below``), and the expected 256 output pixels in
row-major order.
"""

from amaranth.hdl import Shape
from amaranth.lib import data

from golden.gbu_model import quantize_splats, row_setup, shade_tile
from hw.gbu.core import pixel_layout, splat_layout, tile_layout


__all__ = ["tile_case", "lane_records", "splat_payloads", "core_vectors"]


def splat_payloads(cfg, splats, ids, origin):
    """The tile's Gaussians as the model quantizes them: a list of dicts of raw integers."""
    if not len(ids):
        return []
    g = quantize_splats(cfg, splats, ids, origin)
    cols = {k: v.tolist() for k, v in g.items()}
    return [{k: col[n] for k, col in cols.items()} for n in range(len(ids))]


def tile_case(cfg, splats, tiles, t):
    """Tile ``t`` of ``tiles``: header, Gaussians, expected pixels and the model's cycles.

    Returns
    -------
    dict
        ``count``, ``cols``, ``rows``; ``splats`` (see :func:`splat_payloads`); ``pixels``: 256
        lists ``[r, g, b, T, n_contrib, n_blended]`` (raw, background included); ``cycles``
        (:meth:`GBUConfig.tile_cycles` of the model's row work), ``evaluations`` and
        ``row_evals`` (per row).
    """
    gx = tiles.grid[0]
    tile = cfg.tile
    origin = ((t % gx) * tile, (t // gx) * tile)
    ids = tiles.tile(t)
    result = shade_tile(cfg, splats, tiles, t)
    pixels = [[*result.image_raw[p].tolist(), int(result.T_raw[p]), int(result.n_contrib[p]),
               int(result.n_blended[p])] for p in range(tile * tile)]
    return {
        "count": len(ids),
        "cols": min(tile, splats.width - origin[0]),
        "rows": min(tile, splats.height - origin[1]),
        "splats": splat_payloads(cfg, splats, ids, origin),
        "pixels": pixels,
        "cycles": result.cycles,
        "evaluations": int(result.row_evals.sum()),
        "row_evals": result.row_evals.tolist(),
    }


def lane_records(cfg, splats, ids, origin, lane, bank=0):
    """Row records of ``lane`` for every Gaussian and row it holds, in list order (the lane's
    input without a core: no row is dropped for being done), for state bank ``bank``. IRSS
    records come from the model's row setup (empty ones included); naive records carry the
    raw Gaussian and the row."""
    payloads = splat_payloads(cfg, splats, ids, origin)
    rows = list(range(lane, cfg.tile, cfg.lanes))
    if cfg.dataflow == "irss" and payloads:
        g = quantize_splats(cfg, splats, ids, origin)
        setup = {k: v.tolist() for k, v in row_setup(cfg, g).items()}
        a_acc = (g["a"] << (cfg.acc_format.f_bits - cfg.conic_format.f_bits)).tolist()
    records = []
    for j, s in enumerate(payloads):
        for slot, row in enumerate(rows):
            record = {"o": s["o"], "color": s["color"], "slot": slot, "index": j + 1,
                      "bank": bank, "marker": 0}
            if cfg.dataflow == "irss":
                record.update(lo=setup["lo"][j][row], hi=setup["hi"][j][row],
                              P=setup["P"][j][row], D=setup["D"][j][row], a_acc=a_acc[j])
            else:
                record.update({k: s[k] for k in ("mx", "my", "a", "b", "c")}, row=row)
            records.append(record)
    return records


def core_vectors(cfg, cases):
    """JSON vectors of :mod:`sim.tb.gbu_core` for the tile cases ``cases``: packed words of the
    ``tile``, ``splats`` and ``pixels`` streams of :class:`hw.gbu.core.GaussianBlendingUnit`,
    and the pixel fields (name, offset, width) to print a mismatch."""
    def fields(layout):
        out = []
        for name, field in layout:
            if isinstance(field.shape, data.ArrayLayout):
                step = Shape.cast(field.shape.elem_shape).width
                out += [[f"{name}[{n}]", field.offset + n * step, step]
                        for n in range(field.shape.length)]
            else:
                out.append([name, field.offset, field.width])
        return out

    pixels = pixel_layout(cfg)
    tiles = []
    for case in cases:
        tiles.append({
            "header": tile_layout(cfg).const({"count": case["count"], "cols": case["cols"],
                                              "rows": case["rows"]}).as_bits(),
            "splats": [splat_layout(cfg).const(s).as_bits() for s in case["splats"]],
            "pixels": [pixels.const({"color": p[:3], "t": p[3], "n_contrib": p[4],
                                     "n_blended": p[5]}).as_bits() for p in case["pixels"]],
            "cycles": case["cycles"],
        })
    return {"tiles": tiles, "pixel_fields": fields(pixels)}
