"""Tensor-engine figures: FPGA cost and fmax per array (nextpnr), peak GOPS at that fmax, MAC
utilization of the tiled engine on transformer-layer GEMM shapes (measured in amaranth.sim and
compared with the analytic model), and simulation speed.

    python -m bench.gemm --quick          # one build, small simulated shapes
    python -m bench.gemm                  # every array of the table (builds take minutes each)
    python -m bench.gemm --quick --array "W2A8 16x16 ws lut"   # chosen arrays only

Build results are cached in build/bench/gemm-builds.json (bench/builds.py: keyed by design,
parameters, board, target and seed); the figures go to build/bench/gemm.json with a plot of
utilization vs shape beside it.
"""

import argparse
import json
import time
from pathlib import Path

from tqdm import tqdm

from bench.builds import BuildCache
from hw.gemm.config import GemmConfig


#: (name, design, config params, board, target MHz).
ARRAYS = [
    ("int8 4x4 ws", "systolic-array", {"rows": 4, "cols": 4}, "ulx3s-25f", 200),
    ("int8 8x8 ws", "systolic-array", {"rows": 8, "cols": 8}, "ulx3s-45f", 200),
    ("int8 8x8 os", "systolic-array", {"rows": 8, "cols": 8, "dataflow": "os"}, "ulx3s-45f", 200),
    ("int8 4x4 os", "systolic-array", {"rows": 4, "cols": 4, "dataflow": "os"}, "ulx3s-25f", 200),
    ("int8 16x16 ws", "systolic-array", {"rows": 16, "cols": 16}, "ulx3s-85f", 200),
    ("int8 16x16 os", "systolic-array", {"rows": 16, "cols": 16, "dataflow": "os"}, "ulx3s-85f",
     200),
    ("W2A8 16x16 ws lut", "systolic-array", {"rows": 16, "cols": 16, "weight_bits": 2},
     "ulx3s-25f", 125),
    ("int8 8x8 dot-product", "dot-product", {"rows": 8, "cols": 8}, "ulx3s-45f", 200),
    ("W2A8 16x16 dot-product lut", "dot-product",
     {"rows": 16, "cols": 16, "weight_bits": 2, "multiplier": "lut"}, "ulx3s-25f", 150),
    ("int8 4x4 tensor-engine ws", "tensor-engine", {"rows": 4, "cols": 4}, "ulx3s-45f", 200),
    ("int8 8x8 tensor-engine ws", "tensor-engine", {"rows": 8, "cols": 8}, "ulx3s-45f", 150),
    ("int8 8x8 tensor-engine os", "tensor-engine", {"rows": 8, "cols": 8, "dataflow": "os"},
     "ulx3s-45f", 150),
    ("int8 8x8 tensor-engine dot-product", "tensor-engine",
     {"rows": 8, "cols": 8, "array": "dot-product"}, "ulx3s-45f", 150),
]
QUICK_ARRAYS = ("int8 8x8 ws",)

#: GEMM shapes (M, K, N) of a small transformer block (d=64, ff=256) at a few token counts:
#: QKV projection, attention output, FFN up and down.
def _layer_shapes(tokens, d=64, ff=256):
    return [(tokens, d, 3 * d), (tokens, d, d), (tokens, d, ff), (tokens, ff, d)]


def _build(builds, name, design, params, board, freq):
    entry = {"array": name, **builds.build(name, design, params, board, freq)}
    if "fmax_mhz" in entry:
        macs = GemmConfig(**params).peak_macs_per_cycle
        entry["peak_GOPS"] = round(2 * macs * entry["fmax_mhz"] / 1e3, 2)
    return entry


def _utilization(config, shapes, seed):
    import torch
    from sw.gemm import GemmJob, run_engine
    rows = []
    gen = torch.Generator().manual_seed(seed)
    for m, k, n in shapes:
        job = GemmJob(config, torch.randint(-128, 128, (m, k), generator=gen),
                      torch.randint(-1, 2, (k, n), generator=gen), 1, 8)
        _, (cycles,), rate = run_engine([job])
        rows.append({"shape": [m, k, n], "cycles": cycles,
                     "model_cycles": config.engine_cycles(m, k, n),
                     "utilization": round(m * k * n / (config.peak_macs_per_cycle * cycles), 4),
                     "sim_cycles_per_s": round(rate)})
    return rows


def _plot(curves, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, rows in curves.items():
        xs = [r["shape"][0] * r["shape"][1] * r["shape"][2] for r in rows]
        ax.plot(xs, [r["utilization"] for r in rows], "o-", label=label)
    ax.set_xscale("log")
    ax.set_xlabel("GEMM MACs (M*K*N), transformer-layer shapes")
    ax.set_ylabel("MAC utilization (simulated)")
    ax.set_ylim(0, 1)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="one build and small simulated shapes")
    parser.add_argument("--no-build", action="store_true", help="skip the FPGA builds")
    parser.add_argument("--array", action="append", choices=[a[0] for a in ARRAYS],
                        metavar="NAME", help="build only this array of the table (repeatable; "
                                             "names as printed, e.g. 'W2A8 16x16 ws lut')")
    parser.add_argument("--out", default="build/bench", help="output directory")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = BuildCache(out / "gemm-builds.json", out / "gemm")

    builds = []
    if not args.no_build:
        chosen = args.array or (QUICK_ARRAYS if args.quick else [a[0] for a in ARRAYS])
        arrays = [a for a in ARRAYS if a[0] in chosen]
        for name, design, params, board, freq in tqdm(arrays, desc="builds", unit="build"):
            builds.append(_build(cache, name, design, params, board, freq))

    # Quick: a d=32 block; full: d=64. amaranth.sim runs ~400 engine cycles/s.
    tokens, d = ((4, 16), 32) if args.quick else ((4, 16, 64), 64)
    engines = {"4x4 int8": GemmConfig(rows=4, cols=4, a_buffer_depth=4096)}
    if not args.quick:
        engines["8x8 int8"] = GemmConfig(rows=8, cols=8, a_buffer_depth=4096)
        engines["8x8 int8 os"] = GemmConfig(rows=8, cols=8, dataflow="os", a_buffer_depth=4096)
        engines["8x8 int8 dot-product"] = GemmConfig(rows=8, cols=8, array="dot-product",
                                                     a_buffer_depth=4096)
    curves = {}
    for label, config in tqdm(engines.items(), desc="simulation", unit="engine"):
        shapes = sorted({s for t in tokens for s in _layer_shapes(t, d, 4 * d)},
                        key=lambda s: s[0] * s[1] * s[2])
        curves[label] = _utilization(config, shapes, seed=0)

    report = {"builds": builds, "utilization": curves,
              "generated": time.strftime("%Y-%m-%d %H:%M:%S")}
    (out / "gemm.json").write_text(json.dumps(report, indent=2) + "\n")
    _plot(curves, out / "gemm-utilization.png")
    for b in builds:
        what = f"{b['array']:>34} on {b['board']}"
        if "error" in b:
            print(f"{what}: {b['error']}")
            continue
        print(f"{what}: {b['fmax_mhz']:6.1f} MHz (target {b['target_mhz']}), LUT {b['LUT']}, "
              f"FF {b['FF']}, DSP {b['DSP']}, EBR {b['EBR']}, peak {b['peak_GOPS']} GOPS")
    for label, rows in curves.items():
        for r in rows:
            print(f"{label} {tuple(r['shape'])}: {r['cycles']} cycles (model "
                  f"{r['model_cycles']}), utilization {r['utilization']:.1%}, "
                  f"sim {r['sim_cycles_per_s']} cycles/s")
    print(f"wrote {out / 'gemm.json'} and {out / 'gemm-utilization.png'}")


if __name__ == "__main__":
    main()
