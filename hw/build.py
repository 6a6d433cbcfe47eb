"""``python -m hw.build``: build a design into an ECP5 bitstream, or emit its Verilog.

Examples::

    python -m hw.build --board ecp5                       # default design, default board
    python -m hw.build --design list                      # what can be built
    python -m hw.build --design stream-fifo --param depth=1024 --board ulx3s-25f --freq 100
    python -m hw.build --design requantizer --verilog requantizer.v
"""

import argparse
import json
import sys
from pathlib import Path

from boards import BOARDS, DEFAULT_BOARD, board_names, get_board
from boards.toolchain import ToolchainError
from hw.flow import LUT_MAPPERS, BuildError, build_bitstream
from hw.registry import default_design_name, designs, get_design


def parse_params(items):
    """``{key: value}`` from ``--param key=value`` strings; a malformed or repeated key is a
    ``ValueError`` naming it."""
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--param {item!r} is malformed: expected key=value")
        if key in params:
            raise ValueError(f"--param {key} is given twice")
        params[key] = value
    return params


def _list_boards():
    width = max(map(len, BOARDS))
    print(f"{'ecp5':<{width}}  the default board, {DEFAULT_BOARD}")
    for board in BOARDS.values():
        print(f"{board.name:<{width}}  {board.description}, speed {board.speed}, "
              f"{board.clock_hz / 1e6:g} MHz oscillator")


def _list_designs():
    width = max(map(len, designs()))
    for design in designs().values():
        default = " (default)" if design.name == default_design_name() else ""
        params = ", ".join(f"{k}={v}" for k, v in design.config_cls().to_dict().items())
        print(f"{design.name:<{width}}  {design.summary}{default}\n{'':<{width}}  params: {params}")


def _arg_parser():
    parser = argparse.ArgumentParser(
        prog="python -m hw.build",
        description="Build an accelforge design into an ECP5 bitstream and report its cost, "
                    "or emit plain Verilog for ASIC flows.")
    parser.add_argument("--board", default="ecp5",
                        help="board name, 'ecp5' for the default board, or 'list' (default: ecp5)")
    parser.add_argument("--design", default=None,
                        help="design name or 'list' (default: the most complete design)")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="set a parameter of the design's config (repeatable)")
    parser.add_argument("--out", type=Path, default=None,
                        help="build directory (default: build/<board>-<design>)")
    parser.add_argument("--seed", type=int, default=1, help="nextpnr placement seed (default: 1)")
    parser.add_argument("--freq", type=float, default=None, metavar="MHZ",
                        help="target clock in MHz, made by a PLL (default: the board oscillator)")
    parser.add_argument("--verilog", type=Path, default=None, metavar="FILE",
                        help="write plain synthesizable Verilog to FILE instead of building")
    parser.add_argument("--no-blocks", action="store_true",
                        help="skip the per-block utilization (a second Yosys synthesis, run "
                             "alongside place and route)")
    parser.add_argument("--lut-mapper", choices=LUT_MAPPERS, default="abc9",
                        help="Yosys LUT mapper (default: abc9, timing-driven; a build whose "
                             "abc9 fails its reintegration assertion falls back to abc)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv=None):
    args = _arg_parser().parse_args(argv)
    if args.board == "list":
        _list_boards()
        return 0
    if args.design == "list":
        _list_designs()
        return 0
    try:
        design = get_design(args.design or default_design_name())
        config = design.config_cls.from_params(parse_params(args.param))
        if args.verilog is not None:
            from hw.emit import emit_verilog
            args.verilog.write_text(emit_verilog(design, config))
            print(f"wrote {args.verilog} ({design.name}, {type(config).__name__})")
            return 0
        board = get_board(args.board)
        if args.freq is not None and args.freq <= 0:
            raise ValueError(f"--freq {args.freq:g} is not valid: expected a frequency in MHz > 0")
        from hw.report import summarize
        out_dir = args.out or Path("build") / f"{board.name}-{design.name}"
        try:
            report = build_bitstream(design, config, board, out_dir=out_dir, freq_mhz=args.freq,
                                     seed=args.seed, progress=not args.no_progress,
                                     blocks=not args.no_blocks, lut_mapper=args.lut_mapper)
        except BuildError as e:
            raise ValueError(str(e)) from None
    except (ValueError, ToolchainError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(summarize(report, out_dir / "report.json"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
