"""Render a 3D Gaussian Splatting frame and measure it against the fp64 reference.

    python -m sw.render --scene garden --backend model --param lanes=8
    python -m sw.render --scene synthetic --resolution 128x96 --backend reference
    python -m sw.render --scene my.ply --camera-file cam.json --backend model --fmax 100

Writes ``<out>/<scene>-<backend>.png`` and a JSON report beside it (PSNR against fp64, cycles,
lane utilization, interval skip rate, for the model the share of (pixel, Gaussian) decisions equal
to fp64's, frames per second at the given fmax and at 1 GHz), and prints the report. Errors are
one line on stderr and exit status 2.
"""

import argparse
import json
import sys
from pathlib import Path

import matplotlib
import tqdm

from hw.gbu.config import GBUConfig

from .arguments import add_scene_arguments, scene_arguments
from .frame import BACKENDS, load_scene, render_frame


__all__ = ["main"]


def _param(text):
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, value


def _parser():
    parser = argparse.ArgumentParser(prog="python -m sw.render",
                                     description=__doc__.split("\n")[0])
    add_scene_arguments(parser, default="garden")
    parser.add_argument("--backend", choices=BACKENDS, default="model")
    parser.add_argument("--param", type=_param, action="append", default=[],
                        metavar="KEY=VALUE", help="a GBUConfig parameter (repeatable)")
    clock = parser.add_mutually_exclusive_group()
    clock.add_argument("--fmax", type=float, metavar="MHZ", help="clock for fps_at_fmax")
    clock.add_argument("--build-report", type=Path,
                       help="report.json of a gbu build whose routed fmax to use")
    parser.add_argument("--out", type=Path, default=Path("build/render"),
                        help="output directory (default build/render)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _fmax_hz(args):
    if args.fmax is not None:
        if args.fmax <= 0:
            raise ValueError(f"--fmax {args.fmax}: expected a clock in MHz above 0")
        return args.fmax * 1e6
    if args.build_report is None:
        return None
    try:
        fmax = json.loads(args.build_report.read_text())["fmax"]
        return min(clock["achieved_mhz"] for clock in fmax.values()) * 1e6
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"--build-report {args.build_report}: {error}; expected a report.json "
                         f"written by python -m hw.build") from None


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        config = GBUConfig.from_params(dict(args.param))
        fmax_hz = _fmax_hz(args)
        scene, options = scene_arguments(args)
        scene, camera, name = load_scene(scene, **options)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    progress = None if args.no_progress else (
        lambda tiles: tqdm.tqdm(tiles, desc=f"{args.backend} {name}", unit="tile"))
    frame = render_frame(scene, camera, backend=args.backend, config=config, fmax_hz=fmax_hz,
                         progress=progress)
    frame.report["scene"] = name
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"{name}-{args.backend}"
    matplotlib.use("Agg")
    from matplotlib import pyplot
    pyplot.imsave(stem.with_suffix(".png"), frame.image.clamp(0, 1).numpy())
    stem.with_suffix(".json").write_text(json.dumps(frame.report, indent=1) + "\n")
    print(json.dumps(frame.report, indent=1))
    print(f"wrote {stem}.png and {stem}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
