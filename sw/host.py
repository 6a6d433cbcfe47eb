"""Talk to the host bridge from the command line.

    python -m sw.host --port /dev/ttyUSB0 read-reg 0x3
    python -m sw.host --port /dev/ttyUSB0 write-reg 0x3 0xdeadbeef
    python -m sw.host --port /dev/ttyUSB0 dump 0x400 64
    python -m sw.host --sim dump 0x100 8          # the gateware in amaranth.sim

Addresses and counts are 32-bit *word* addresses and word counts (decimal or 0x-prefixed). With
``--sim`` every invocation starts a fresh simulated board (registers and memory read as 0).
Errors are one line on stderr and exit status 1.
"""

import argparse
import sys

from .arguments import integer
from .device import Device, DeviceError, SerialTransport, SimTransport


__all__ = ["main"]


def _parser():
    parser = argparse.ArgumentParser(prog="python -m sw.host", description=__doc__.split("\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", help="serial port of the board, e.g. /dev/ttyUSB0")
    where.add_argument("--sim", action="store_true", help="simulate the bridge gateware instead")
    parser.add_argument("--baud", type=int, default=1_000_000,
                        help="line rate of the bitstream (default 1000000)")
    parser.add_argument("--max-words", type=int, default=None,
                        help="the bitstream's max_words (default: HostConfig's)")
    parser.add_argument("--retries", type=int, default=3, help="extra attempts per frame")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("read-reg", help="print the word at ADDR")
    p.add_argument("addr", type=integer)
    p = commands.add_parser("write-reg", help="write VALUE to ADDR")
    p.add_argument("addr", type=integer)
    p.add_argument("value", type=integer)
    p = commands.add_parser("dump", help="print WORDS words from ADDR, 4 per line")
    p.add_argument("addr", type=integer)
    p.add_argument("words", type=integer)
    return parser


def main(argv=None, out=None):
    out = sys.stdout if out is None else out
    args = _parser().parse_args(argv)
    try:
        transport = SimTransport() if args.sim else SerialTransport(args.port, args.baud)
        with Device(transport, max_words=args.max_words, retries=args.retries) as dev:
            if args.command == "read-reg":
                print(f"{args.addr:#010x}: {dev.read_reg(args.addr):#010x}", file=out)
            elif args.command == "write-reg":
                dev.write_reg(args.addr, args.value)
            else:
                words = dev.read_block(args.addr, args.words)
                for n in range(0, len(words), 4):
                    print(f"{args.addr + n:#010x}: "
                          + " ".join(f"{w:08x}" for w in words[n:n + 4]), file=out)
    except (DeviceError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
