# amaranth: UnusedElaboratable=no
"""RowSetup in amaranth.sim against golden.gbu_model.row_setup: every output field of every
(Gaussian, row) exact, under random valid/ready stalls, for Gaussians quantized from synthetic
scenes, random raw values and edge cases, over several configs (default, narrow formats, each
rounding mode); the latency and full throughput without stalls; parameter checks.

:func:`make_items` and :func:`expected_outputs` are shared with the cocotb test.
"""

import random

import pytest
import torch
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from golden.gbu_model import quantize_splats, row_setup
from golden.splat_binning import bin_splats
from golden.splat_preprocess import preprocess
from golden.splat_scenes import synthetic_scene
from hw.gbu.config import GBUConfig
from hw.gbu.row_setup import RowSetup, row_setup_in_layout, row_setup_out_layout
from hw.lib.config import SQ, UQ
from sim.pysim_stream import stream_get, stream_put


TILE = 16
FIELDS = ("mx", "my", "a", "b", "c", "o")

NARROW = GBUConfig(coord_format=SQ(8, 6), conic_format=SQ(3, 12), x0_format=SQ(9, 5),
                   p0_format=SQ(5, 10), acc_format=SQ(5, 14), alpha_format=UQ(1, 9),
                   color_format=UQ(1, 7), t_format=UQ(1, 14), color_acc_format=UQ(2, 10),
                   exp_addr_bits=5, rounding="half_even")


def _fmt(cfg, field):
    return {"mx": cfg.coord_format, "my": cfg.coord_format, "a": cfg.conic_format,
            "b": cfg.conic_format, "c": cfg.conic_format, "o": cfg.alpha_format}[field]


def scene_gaussians(cfg, seed, tiles=2):
    """Gaussians of the first ``tiles`` non-empty tiles of a synthetic scene, quantized."""
    scene, camera = synthetic_scene(seed, 48, 32)
    splats = preprocess(scene, camera)
    lists = bin_splats(splats)
    gx = lists.grid[0]
    out = []
    for t in range(gx * lists.grid[1]):
        ids = lists.ids[int(lists.offsets[t]):int(lists.offsets[t + 1])]
        if len(ids):
            out.append(quantize_splats(cfg, splats, ids, ((t % gx) * TILE, (t // gx) * TILE)))
        if len(out) == tiles:
            break
    return {k: torch.cat([g[k] for g in out]) for k in out[0]}


def random_gaussians(cfg, n, rng):
    """Raw values: half uniform over the formats, half shaped like real conics near the tile."""
    rows = []
    for i in range(n):
        if i % 2:
            rows.append({f: rng.randint(_fmt(cfg, f).min_int, _fmt(cfg, f).max_int)
                         for f in FIELDS})
            continue
        q, c = cfg.coord_format, cfg.conic_format
        sigma_x, sigma_y = rng.uniform(0.3, 40), rng.uniform(0.3, 40)
        rho = rng.uniform(-0.95, 0.95)
        det = sigma_x ** 2 * sigma_y ** 2 * (1 - rho ** 2)
        conic = (sigma_y ** 2 / det, -rho * sigma_x * sigma_y / det, sigma_x ** 2 / det)
        rows.append({
            "mx": round(rng.uniform(-40, 56) * (1 << q.f_bits)),
            "my": round(rng.uniform(-40, 56) * (1 << q.f_bits)),
            **{k: max(c.min_int, min(c.max_int, round(v * (1 << c.f_bits))))
               for k, v in zip("abc", conic)},
            "o": rng.randint(0, _fmt(cfg, "o").max_int)})
    return rows


def edge_gaussians(cfg):
    """Degenerate conics, opacities around 1/255 and at bit-length steps, huge and tiny radii,
    means far outside the tile, x0 saturating."""
    q, c, al = cfg.coord_format, cfg.conic_format, cfg.alpha_format
    one_c, one_q = 1 << c.f_bits, 1 << q.f_bits
    base = {"mx": 8 * one_q, "my": 8 * one_q, "a": one_c // 4, "b": one_c // 16,
            "c": one_c // 8, "o": al.max_int}
    cases = []
    for a in (0, -1, c.min_int, -one_c):
        cases.append({**base, "a": a})
    cases.append({**base, "b": one_c, "a": one_c // 8, "c": one_c // 8})       # det < 0
    m = cfg.alpha_min_raw
    for o in {0, 1, m - 1, m, m + 1, 2 * m, (1 << (m.bit_length() - 1)) - 1,
              1 << (m.bit_length() - 1), 1 << m.bit_length(), al.max_int}:
        cases.append({**base, "o": max(0, min(al.max_int, o))})
    cases.append({**base, "a": 1, "c": 1, "b": 0})                             # huge radius
    cases.append({**base, "a": 1, "c": c.max_int, "b": 0})
    cases.append({**base, "a": c.max_int, "c": c.max_int, "b": 0})             # tiny radius
    cases.append({**base, "a": c.max_int, "c": c.max_int, "b": c.max_int - 1})
    for mx, my in ((q.min_int, q.min_int), (q.max_int, q.max_int), (q.min_int, 8 * one_q),
                   (8 * one_q, q.max_int), (-3 * one_q, 7 * one_q), (20 * one_q, 3 * one_q)):
        cases.append({**base, "mx": mx, "my": my})
    for b in (c.max_int, c.min_int):                                            # x0 saturates
        cases.append({**base, "a": 1, "b": b, "c": c.max_int, "my": q.max_int})
        cases.append({**base, "a": 1, "b": b, "c": c.max_int, "my": q.min_int})
    return cases


def make_items(cfg, *, seed, n_random, scene_tiles=1, rows_per_gaussian=None, tag_width=8):
    """Input payloads (dicts of ints) for RowSetup: scene Gaussians, random and edge cases,
    each with every row (or ``rows_per_gaussian`` random rows)."""
    rng = random.Random(seed)
    gaussians = []
    if scene_tiles:
        g = scene_gaussians(cfg, seed, scene_tiles)
        gaussians += [{k: int(g[k][n]) for k in FIELDS} for n in range(len(g["a"]))]
    gaussians += random_gaussians(cfg, n_random, rng) + edge_gaussians(cfg)
    cmax = cfg.color_format.max_int
    items = []
    for g in gaussians:
        color = [rng.randint(0, cmax) for _ in range(3)]
        rows = range(TILE) if rows_per_gaussian is None else \
            rng.sample(range(TILE), rows_per_gaussian)
        for row in rows:
            items.append({**g, "color": color, "row": row,
                          "tag": rng.randrange(1 << tag_width)})
    return items


def expected_outputs(cfg, items):
    """The golden outputs (dicts of ints) of ``items``, in order."""
    g = {k: torch.tensor([it[k] for it in items], dtype=torch.int64) for k in FIELDS}
    setup = row_setup(cfg, g)
    shift = cfg.acc_format.f_bits - cfg.conic_format.f_bits
    out = []
    for n, it in enumerate(items):
        r = it["row"]
        out.append({"lo": int(setup["lo"][n, r]), "hi": int(setup["hi"][n, r]),
                    "empty": int(setup["empty"][n, r]), "P": int(setup["P"][n, r]),
                    "D": int(setup["D"][n, r]), "a_acc": it["a"] << shift, "o": it["o"],
                    "color": list(it["color"]), "row": r, "tag": it["tag"]})
    return out


def _view_to_dict(view):
    out = {k: int(getattr(view, k)) for k in
           ("lo", "hi", "empty", "P", "D", "a_acc", "o", "row", "tag")}
    out["color"] = [int(view.color[n]) for n in range(3)]
    return out


def simulate(cfg, items, *, seed=0, in_stall=0.0, out_stall=0.0, tag_width=8,
             stages_per_register=1):
    """Run RowSetup on ``items``; return ``(outputs, cycles, latency)`` where ``cycles`` counts
    from the first input transfer to the last output transfer, inclusive."""
    dut = RowSetup(config=cfg, tag_width=tag_width, stages_per_register=stages_per_register)
    rng = random.Random(seed)
    received = []
    seen = {"first": None, "last": None}

    async def feed(ctx):
        for it in items:
            await stream_put(ctx, dut.i, it, rng=rng, stall=in_stall)

    async def drain(ctx):
        for _ in items:
            received.append(_view_to_dict(await stream_get(ctx, dut.o, rng=rng,
                                                          stall=out_stall)))

    async def monitor(ctx):
        cycle = 0
        while True:
            _, _, iv, ir, ov, orr = await ctx.tick().sample(dut.i.valid, dut.i.ready,
                                                            dut.o.valid, dut.o.ready)
            if iv and ir and seen["first"] is None:
                seen["first"] = cycle
            if ov and orr:
                seen["last"] = cycle
            cycle += 1
            assert cycle < 20 * len(items) + 10 * dut.latency, "stuck"

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(feed)
    sim.add_testbench(drain)
    sim.add_testbench(monitor, background=True)
    sim.run()
    return received, seen["last"] - seen["first"] + 1, dut.latency


def _compare(items, received, expected):
    assert len(received) == len(expected)
    for n, (got, want) in enumerate(zip(received, expected)):
        assert got == want, f"item {n} {items[n]}: got {got}, expected {want}"


def random_config(rng):
    """A valid GBUConfig with random formats (fraction bits above and below one another, so
    every scale of the setup goes both ways) and rounding."""
    while True:
        fq, fc, fx, fp = (rng.randint(1, 14) for _ in range(4))
        fa = rng.randint(max(fc + 1, fp), max(fc + 1, fp) + 6)
        qi = rng.randint(7, 12)
        try:
            return GBUConfig(
                coord_format=SQ(qi, fq), conic_format=SQ(rng.randint(3, 5), fc),
                x0_format=SQ(rng.randint(qi, qi + 2), fx), p0_format=SQ(rng.randint(5, 7), fp),
                acc_format=SQ(rng.randint(5, 8), fa), alpha_format=UQ(1, rng.randint(8, 16)),
                color_format=UQ(1, rng.randint(4, 10)),
                exp_addr_bits=rng.randint(3, min(8, fa + 3)),
                rounding=rng.choice(("trunc", "half_up", "half_away", "half_even")))
        except ValueError:
            continue


CASES = [
    (GBUConfig(), 1, 0.3, 0.4),
    (NARROW, 1, 0.5, 0.2),
    (GBUConfig(rounding="trunc"), 1, 0.2, 0.6),
    (GBUConfig(rounding="half_away", coord_format=SQ(10, 8), x0_format=SQ(11, 10)), 2, 0.3, 0.3),
    (NARROW.replace(rounding="half_up"), 3, 0.4, 0.4),
]


@pytest.mark.parametrize("cfg, stages_per_register, in_stall, out_stall", CASES,
                         ids=lambda v: f"{v.coord_format}-{v.rounding}"
                         if isinstance(v, GBUConfig) else None)
def test_exact_under_stalls(cfg, stages_per_register, in_stall, out_stall):
    items = make_items(cfg, seed=7, n_random=24, rows_per_gaussian=3)
    received, _, _ = simulate(cfg, items, seed=3, in_stall=in_stall, out_stall=out_stall,
                           stages_per_register=stages_per_register)
    _compare(items, received, expected_outputs(cfg, items))


@pytest.mark.parametrize("seed", range(4))
def test_exact_random_configs(seed):
    cfg = random_config(random.Random(seed))
    items = make_items(cfg, seed=seed, n_random=16, scene_tiles=0, rows_per_gaussian=2,
                       tag_width=3)
    received, _, _ = simulate(cfg, items, seed=seed, in_stall=0.2, out_stall=0.2, tag_width=3,
                           stages_per_register=1 + seed % 3)
    _compare(items, received, expected_outputs(cfg, items))


def test_latency_and_full_throughput():
    cfg = GBUConfig()
    items = make_items(cfg, seed=4, n_random=0, scene_tiles=1, rows_per_gaussian=None)[:100]
    received, cycles, latency = simulate(cfg, items)
    _compare(items, received, expected_outputs(cfg, items))
    assert cycles == latency + len(items)


def test_interface_and_checks():
    cfg = GBUConfig()
    dut = RowSetup(config=cfg, tag_width=5)
    coarse = RowSetup(config=cfg, stages_per_register=2)
    Fragment.get(dut, None)
    Fragment.get(coarse, None)
    assert dut.i.payload.shape() == row_setup_in_layout(cfg, 5)
    assert dut.o.payload.shape() == row_setup_out_layout(cfg, 5)
    assert len(dut.o.payload.P) == cfg.acc_format.width
    assert len(dut.o.payload.lo) == 5
    assert coarse.latency < dut.latency
    with pytest.raises(TypeError, match="RowSetup.config must be a GBUConfig"):
        RowSetup(config={"tile": 16})
    with pytest.raises(ValueError, match="RowSetup.tag_width=0"):
        RowSetup(config=cfg, tag_width=0)
    with pytest.raises(ValueError, match="RowSetup.stages_per_register=0"):
        RowSetup(config=cfg, stages_per_register=0)
