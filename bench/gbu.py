"""Gaussian Blending Unit figures, ``irss`` and ``naive`` side by side: per lane count, the
routed build on an 85F (LUT, FF, DSP, EBR, fmax from nextpnr); from the bit-exact model on the
garden scene at 648x420, cycles per tile, Gaussian-pixel evaluations per cycle, lane utilization,
skip rates (``interval``: of the pixels of the rows set up, those outside their interval;
``pixel``: of the pixels of every (Gaussian, row) pair of the live rows, which the naive dataflow
evaluates, those IRSS never evaluates, outside the row range or the interval), and frames per
second at the routed fmax and at 1 GHz.

    python -m bench.gbu --no-build              # model figures only, every tile of the frame
    python -m bench.gbu --no-build --tiles 64   # the same from a seeded sample of 64 tiles
    python -m bench.gbu --lanes 1,2             # builds too (large builds take an hour)

The model's work on a tile does not depend on the lane count (rows go to lanes round robin;
each lane evaluates one pair per cycle, each row setup makes one (Gaussian, row) record per
cycle), so one model run per dataflow gives every lane count and every number of row setups
(IRSS is shown with one row setup, the default, and with one per lane). The frame is the sum of
its tiles, each costing its busiest lane's or row setup's work
(:meth:`~hw.gbu.config.GBUConfig.tile_cycles`) or the 256-cycle read-out of its pixels,
whichever is longer (the core shades one tile while it reads the previous one out). With
``--tiles N`` the non-empty tiles are a seeded sample whose mean stands for all of them (the
standard error is printed); empty tiles cost the read-out only.

Figures go to build/bench/gbu.json with a plot (gbu.png) beside it; builds are cached in
build/bench/gbu-builds.json.
"""

import argparse
import json
import math
import random
import statistics
import time
from pathlib import Path

from tqdm import tqdm

from bench.builds import BuildCache
from golden.gbu_model import shade_tile
from golden.splat_binning import bin_splats
from golden.splat_preprocess import preprocess
from hw.gbu.config import GBUConfig
from sw.frame import load_scene


DATAFLOWS = ("irss", "naive")


def _lane_counts(text):
    counts = [int(v) for v in text.split(",")]
    for lanes in counts:
        GBUConfig(lanes=lanes)
    return counts


def _parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lanes", type=_lane_counts, default=[1, 2, 4, 8, 16],
                        help="comma-separated lane counts (default 1,2,4,8,16)")
    parser.add_argument("--scene", default="garden",
                        help="garden (../shared/data), synthetic, or a .ply with --camera-file")
    parser.add_argument("--camera-file", type=Path, help="JSON camera for a .ply scene")
    parser.add_argument("--tiles", type=int, default=0,
                        help="non-empty tiles sampled for the model (default 0: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the tile sample")
    parser.add_argument("--board", default="ulx3s-85f")
    parser.add_argument("--freq", type=float, default=100, help="build target in MHz")
    parser.add_argument("--no-build", action="store_true", help="skip the FPGA builds")
    parser.add_argument("--out", type=Path, default=Path("build/bench"),
                        help="output directory")
    return parser


def _sample(tiles, count, seed):
    """(sampled non-empty tile indices, number of non-empty tiles, number of tiles)."""
    total = tiles.grid[0] * tiles.grid[1]
    busy = [t for t in range(total) if tiles.offsets[t + 1] > tiles.offsets[t]]
    picks = busy if count <= 0 or count >= len(busy) else \
        sorted(random.Random(seed).sample(busy, count))
    return picks, len(busy), total


def _shade(dataflow, splats, tiles, picks):
    """Per sampled tile: the model's per-row evaluations and row setups, the pixels the
    intervals skipped and the live (Gaussian, row) pairs."""
    config = GBUConfig(dataflow=dataflow)
    rows = []
    for t in tqdm(picks, desc=f"model {dataflow}", unit="tile"):
        r = shade_tile(config, splats, tiles, t)
        rows.append({"row_evals": r.row_evals.tolist(), "row_setups": r.row_setups.tolist(),
                     "skipped": int(r.row_skipped.sum()), "pairs": int(r.row_pairs.sum())})
    return rows


def _lane_figures(config, shaded, busy, total, fmax_mhz):
    lanes = config.lanes
    readout = config.tile * config.tile
    shading = [config.tile_cycles(r["row_evals"], r["row_setups"]) for r in shaded]
    evals = sum(sum(r["row_evals"]) for r in shaded)
    setups = sum(sum(r["row_setups"]) for r in shaded)
    pairs = sum(r["pairs"] for r in shaded)
    per_tile = [max(c, readout) for c in shading]
    frame = statistics.fmean(per_tile) * busy + readout * (total - busy)
    error = statistics.stdev(per_tile) / math.sqrt(len(per_tile)) * busy \
        if len(per_tile) < busy else 0.0
    figures = {
        "lanes": lanes,
        "row_setups": config.row_setups if config.dataflow == "irss" else 0,
        "cycles_per_tile_mean": round(statistics.fmean(shading), 1),
        "cycles_per_tile_max": max(shading),
        "evaluations_per_cycle": round(evals / sum(shading), 3),
        "lane_utilization": round(evals / (lanes * sum(shading)), 4),
        "interval_skip_rate": round(sum(r["skipped"] for r in shaded) / (config.tile * setups),
                                    4),
        "pixel_skip_rate": round(1 - evals / (config.tile * pairs), 4),
        "frame_cycles": round(frame),
        "frame_cycles_stderr": round(error),
        "fps_at_1ghz": round(1e9 / frame, 1),
    }
    if fmax_mhz is not None:
        figures["fmax_mhz"] = fmax_mhz
        figures["fps_at_fmax"] = round(fmax_mhz * 1e6 / frame, 1)
    return figures


def _plot(table, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (util, fps) = plt.subplots(1, 2, figsize=(10, 4))
    for dataflow, rows in table.items():
        lanes = [r["lanes"] for r in rows]
        util.plot(lanes, [r["lane_utilization"] for r in rows], "o-", label=dataflow)
        fps.plot(lanes, [r["fps_at_1ghz"] for r in rows], "o-", label=f"{dataflow} at 1 GHz")
        at_fmax = [(r["lanes"], r["fps_at_fmax"]) for r in rows if "fps_at_fmax" in r]
        if at_fmax:
            fps.plot(*zip(*at_fmax), "s--", label=f"{dataflow} at routed fmax")
    for ax in (util, fps):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("row shader lanes")
        ax.grid(True, alpha=0.3)
        ax.legend()
    util.set_ylabel("lane utilization (model)")
    util.set_ylim(0, 1.05)
    fps.set_ylabel("frames per second")
    fps.set_yscale("log")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    args = _parser().parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    size = None if args.scene == "garden" else (648, 420)
    scene, camera, name = load_scene(args.scene, camera_file=args.camera_file, size=size)
    splats = preprocess(scene, camera)
    tiles = bin_splats(splats)
    picks, busy, total = _sample(tiles, args.tiles, args.seed)
    print(f"{name}: {len(scene)} Gaussians, {camera.width}x{camera.height}, {total} tiles "
          f"({busy} non-empty, {len(picks)} shaded by the model)")

    builds = {}
    if not args.no_build:
        cache = BuildCache(args.out / "gbu-builds.json", args.out / "gbu")
        runs = [(d, n) for d in DATAFLOWS for n in args.lanes]
        for dataflow, lanes in tqdm(runs, desc="builds", unit="build"):
            builds[dataflow, lanes] = cache.build(
                f"gbu-{dataflow}-{lanes}", "gbu", {"dataflow": dataflow, "lanes": lanes},
                args.board, args.freq)

    table = {}
    for dataflow in DATAFLOWS:
        shaded = _shade(dataflow, splats, tiles, picks)
        configs = {"irss": [GBUConfig(lanes=n, row_setups=1) for n in args.lanes],
                   "irss, a row setup per lane": [GBUConfig(lanes=n, row_setups=n)
                                                  for n in args.lanes],
                   "naive": [GBUConfig(lanes=n, dataflow="naive") for n in args.lanes]}
        for label, sweep in configs.items():
            if label.startswith(dataflow):
                table[label] = [
                    _lane_figures(config, shaded, busy, total,
                                  builds.get((dataflow, config.lanes), {}).get("fmax_mhz")
                                  if config.row_setups == 1 else None)
                    for config in sweep]

    report = {"scene": name, "width": camera.width, "height": camera.height,
              "tiles": total, "non_empty_tiles": busy, "sampled_tiles": len(picks),
              "sample_seed": args.seed, "builds": list(builds.values()), "model": table,
              "wall_time_s": round(time.perf_counter() - started, 1)}
    (args.out / "gbu.json").write_text(json.dumps(report, indent=2) + "\n")
    _plot(table, args.out / "gbu.png")

    for b in builds.values():
        what = f"{b['params']['dataflow']:>5} {b['params']['lanes']:>2} lanes on {b['board']}"
        if "error" in b:
            print(f"{what}: {b['error']}")
        else:
            print(f"{what}: {b['fmax_mhz']:6.1f} MHz (target {b['target_mhz']}), LUT {b['LUT']}, "
                  f"FF {b['FF']}, DSP {b['DSP']}, EBR {b['EBR']}")
    print(f"{'dataflow':>8} {'lanes':>5} {'setups':>6} {'cycles/tile':>11} {'evals/cycle':>11} "
          f"{'lane util':>9} {'skip':>6} {'px skip':>7} {'FPS@1GHz':>9} {'FPS@fmax':>9}")
    for label, rows in table.items():
        for r in rows:
            at_fmax = f"{r['fps_at_fmax']:9.1f}" if "fps_at_fmax" in r else f"{'-':>9}"
            print(f"{label.split(',')[0]:>8} {r['lanes']:>5} {r['row_setups']:>6} "
                  f"{r['cycles_per_tile_mean']:>11.1f} "
                  f"{r['evaluations_per_cycle']:>11.3f} {r['lane_utilization']:>9.1%} "
                  f"{r['interval_skip_rate']:>6.1%} {r['pixel_skip_rate']:>7.1%} "
                  f"{r['fps_at_1ghz']:>9.1f} {at_fmax}")
    for irss, per_lane, naive in zip(table["irss"], table["irss, a row setup per lane"],
                                     table["naive"]):
        print(f"{irss['lanes']:>2} lanes: naive / irss cycles per tile = "
              f"{naive['cycles_per_tile_mean'] / irss['cycles_per_tile_mean']:.2f}x with one "
              f"row setup, {naive['cycles_per_tile_mean'] / per_lane['cycles_per_tile_mean']:.2f}x "
              f"with one per lane")
    print(f"wrote {args.out / 'gbu.json'} and {args.out / 'gbu.png'}")


if __name__ == "__main__":
    main()
