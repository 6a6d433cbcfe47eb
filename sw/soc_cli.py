"""``python -m sw.soc``: the SoC's jobs from the command line, on a board or in the simulator.

    python -m sw.soc --port /dev/ttyUSB0 --map build/ulx3s-85f-soc/address_map.json info
    python -m sw.soc --port /dev/ttyUSB0 --map MAP gemm --a a.npy --w w.npy \\
        --multiplier 16384 --shift 20 --relu --out c.npy --check
    python -m sw.soc --sim gemm --shape 5x7x3 --seed 1 --check
    python -m sw.soc --sim kv-step --steps 3 --seed 1 --read 0 --check
    python -m sw.soc --port /dev/ttyUSB0 --map MAP kv-read 5 --out layer5.npz
    python -m sw.soc --port /dev/ttyUSB0 --map MAP gbu-tile --scene garden --tile 700 \\
        --out tile.png --check

A board is described by the ``address_map.json`` of its build (``--map``); its line rate is the
map's unless ``--baud`` is given. ``--sim`` runs the SoC gateware in ``amaranth.sim`` through its
UART pins (:data:`sw.soc.SIM_SOC_CONFIG`, changed with ``--param``; it has no GBU: a GBU tile
there needs ``--param gbu_lanes=1`` and takes minutes); every invocation starts a fresh SoC.
``--check`` compares the results with the golden models (``golden.gemm``, ``golden.kv_cache``,
``golden.gbu_model``); the KV check assumes the cache was empty before (a freshly loaded board
or ``--sim``). Errors, and results that differ from the golden ones, are one line on stderr and
exit status 1.
"""

import argparse
import json
import sys

import matplotlib
import numpy as np
import torch

from golden.gemm import matmul_int, requantize
from golden.kv_cache import KVCache
from golden.lacache import make_policy
from golden.splat_binning import bin_splats
from golden.splat_preprocess import preprocess
from hw.build import parse_params
from hw.soc.config import SoCConfig
from sim.gbu_vectors import tile_case

from .arguments import add_scene_arguments, integer, scene_arguments
from .device import Device, DeviceError, SerialTransport
from .frame import load_scene
from .soc import SIM_SOC_CONFIG, SoCClient, simulated_client


__all__ = ["main"]


def _shape(text):
    try:
        m, k, n = (int(d) for d in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a shape MxKxN") from None
    return m, k, n


def _parser():
    parser = argparse.ArgumentParser(prog="python -m sw.soc",
                                     description=__doc__.split("\n")[0].split(": ", 1)[1])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", help="serial port of the board, e.g. /dev/ttyUSB0")
    where.add_argument("--sim", action="store_true", help="simulate the SoC gateware instead")
    parser.add_argument("--map", type=argparse.FileType("r"), metavar="ADDRESS_MAP_JSON",
                        help="address_map.json of the board's build (required with --port)")
    parser.add_argument("--baud", type=int, default=None,
                        help="line rate (default: the address map's)")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="with --sim: a SoCConfig parameter of the simulated SoC (repeatable)")
    parser.add_argument("--retries", type=int, default=3, help="extra attempts per frame")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("info", help="check the board's info words against the address map "
                                     "and print the map")

    p = commands.add_parser("gemm", help="C = requant(A @ W) on the tensor engine")
    p.add_argument("--a", metavar="A.npy", help="activations (M, K), int8")
    p.add_argument("--w", metavar="W.npy", help="weights (K, N), gemm_weight_bits")
    p.add_argument("--shape", type=_shape, metavar="MxKxN",
                   help="random operands of this shape instead of --a/--w")
    p.add_argument("--seed", type=int, default=0, help="seed of the random operands and scales")
    p.add_argument("--multiplier", metavar="INT|FILE.npy",
                   help="per-channel multiplier (default with --shape: random)")
    p.add_argument("--shift", metavar="INT|FILE.npy",
                   help="per-channel right shift (default with --shape: random)")
    p.add_argument("--relu", action="store_true")
    p.add_argument("--out", metavar="C.npy", help="write the int8 result here")
    p.add_argument("--check", action="store_true", help="compare with the golden model")

    p = commands.add_parser("kv-step", help="append tokens to the KV cache (compacting when due)")
    p.add_argument("--rows", metavar="ROWS.npy",
                   help="(steps, layers, 2, kv_heads*head_dim): K then V of each layer per token")
    p.add_argument("--steps", type=int, default=1, help="random tokens instead of --rows")
    p.add_argument("--seed", type=int, default=0, help="seed of the random tokens")
    p.add_argument("--read", type=int, action="append", default=[], metavar="LAYER",
                   help="read this layer afterwards (repeatable)")
    p.add_argument("--check", action="store_true",
                   help="compare the layers read with the golden KV cache")

    p = commands.add_parser("gbu-tile", help="shade one 16x16 tile of a scene on the GBU")
    add_scene_arguments(p, default="synthetic")
    p.add_argument("--tile", type=integer,
                   help="tile index, row-major (default: the one with the most Gaussians that "
                        "the GBU takes)")
    p.add_argument("--out", metavar="TILE.png", help="write the tile's colors here")
    p.add_argument("--check", action="store_true", help="compare with the GBU's golden model")

    p = commands.add_parser("kv-read", help="print the kept rows of one layer in logical order")
    p.add_argument("layer", type=integer)
    p.add_argument("--out", metavar="ROWS.npz", help="also write pos, k, v arrays here")
    return parser


def _client(args):
    if args.sim:
        base = {k: str(v) for k, v in SIM_SOC_CONFIG.to_dict().items()}
        return simulated_client(SoCConfig.from_params({**base, **parse_params(args.param)}))
    address_map = json.load(args.map)
    config = SoCConfig.from_dict(address_map["config"])
    device = Device(SerialTransport(args.port, args.baud or config.baud),
                    max_words=config.max_words, retries=args.retries)
    try:
        return SoCClient(device, address_map)
    except DeviceError:
        device.close()
        raise


def _load(path, what):
    try:
        return torch.from_numpy(np.load(path)).to(torch.int64)
    except (OSError, ValueError) as e:
        raise ValueError(f"{what}: cannot read {path!r}: {e}") from None


def _scale(text, what):
    try:
        return int(text, 0)
    except ValueError:
        return _load(text, f"--{what}")


def _mismatch(what, got, want):
    """One line saying where ``got`` first differs from ``want``, or None when equal."""
    if got.shape != want.shape:
        return f"{what}: shape {tuple(got.shape)} differs from the golden {tuple(want.shape)}"
    wrong = (got != want).nonzero()
    if not len(wrong):
        return None
    at = tuple(wrong[0].tolist())
    return (f"{what} differs from the golden model in {len(wrong)} of {got.numel()} entries "
            f"(first at {at}: got {got[at].item()}, expected {want[at].item()})")


def _check_args(args):
    """Argument combinations argparse cannot express, checked before a board is opened."""
    if args.sim and args.map is not None:
        raise ValueError("--map describes a board: with --sim the simulated SoC makes its own")
    if not args.sim and args.map is None:
        raise ValueError("--port needs --map: the address_map.json of the board's build")
    if not args.sim and args.param:
        raise ValueError("--param sets the simulated SoC: with --port the address map says "
                         "what the board runs")
    if args.command == "gemm":
        if args.shape is not None and (args.a or args.w):
            raise ValueError("gemm: give --shape or --a/--w, not both")
        if args.shape is None and not (args.a and args.w):
            raise ValueError("gemm: give the operands (--a and --w) or a random --shape")
        if args.shape is None and (args.multiplier is None or args.shift is None):
            raise ValueError("gemm: --multiplier and --shift are required with --a/--w")


def _random_operands(config, shape, seed):
    """Seeded ``(a, w, multiplier, shift)``, scaled so that most results do not saturate."""
    gen = torch.Generator().manual_seed(seed)
    m, k, n = shape
    lo = -(1 << (config.weight_bits - 1))
    a = torch.randint(-128, 128, (m, k), generator=gen)
    w = torch.randint(lo, -lo, (k, n), generator=gen)
    multiplier = torch.randint(1 << 13, 1 << 15, (n,), generator=gen)
    # An entry of A @ W is about sqrt(K) * 2**(6 + weight_bits - 2) and the multiplier about
    # 2**14: a shift of this much leaves most results inside int8.
    base = 13 + config.weight_bits + k.bit_length() // 2
    shift = torch.randint(base, base + 3, (n,), generator=gen)
    return a, w, multiplier, shift


def _gemm(client, args, out):
    if args.shape is not None:
        a, w, multiplier, shift = _random_operands(client.gemm_config(), args.shape, args.seed)
        if args.multiplier is not None:
            multiplier = _scale(args.multiplier, "multiplier")
        if args.shift is not None:
            shift = _scale(args.shift, "shift")
    else:
        a, w = _load(args.a, "--a"), _load(args.w, "--w")
        multiplier, shift = _scale(args.multiplier, "multiplier"), _scale(args.shift, "shift")
    c = client.gemm(a, w, multiplier, shift, relu=args.relu)
    if args.out:
        np.save(args.out, c.numpy().astype(np.int8))
    print(f"C = requant(A @ W): {c.shape[0]}x{c.shape[1]} int8"
          + (f", written to {args.out}" if args.out else ""), file=out)
    if not args.out:
        print(np.array2string(c.numpy(), max_line_width=100), file=out)
    if args.check:
        n = c.shape[1]
        want = requantize(matmul_int(a, w), torch.as_tensor(multiplier).expand(n),
                          torch.as_tensor(shift).expand(n),
                          rounding=client.config.gemm.rounding, relu=args.relu)
        wrong = _mismatch("GEMM result", c, want)
        if wrong:
            raise ValueError(wrong)
        print("matches the golden model", file=out)


def _token_rows(kv, args):
    """``(steps, layers, 2, kv_heads * head_dim)`` int64 rows to append."""
    n = kv.kv_heads * kv.head_dim
    if args.rows:
        rows = _load(args.rows, "--rows")
        if rows.dim() == 3:
            rows = rows[None]
        if rows.dim() != 4 or tuple(rows.shape[1:]) != (kv.layers, 2, n):
            raise ValueError(f"kv-step: --rows has shape {tuple(rows.shape)}: expected (steps, "
                             f"{kv.layers}, 2, {n}) (K then V of every layer per token)")
        return rows
    if args.steps < 1:
        raise ValueError(f"kv-step: --steps {args.steps} is not valid: expected >= 1")
    gen = torch.Generator().manual_seed(args.seed)
    return torch.randint(0, 1 << kv.elem_bits, (args.steps, kv.layers, 2, n), generator=gen)


def _print_rows(layer, rows, out):
    print(f"layer {layer}: {len(rows)} rows (pos: k | v)", file=out)
    for pos, k, v in rows:
        print(f"  {pos:4}: {' '.join(map(str, k))} | {' '.join(map(str, v))}", file=out)


def _kv_step(client, args, out):
    kv = client.kv_config()
    for layer in args.read:
        if not 0 <= layer < kv.layers:
            raise ValueError(f"kv-step: --read {layer}: expected a layer in 0..{kv.layers - 1}")
    rows = _token_rows(kv, args)
    for token in rows:
        client.kv_step([(k.tolist(), v.tolist()) for k, v in token])
    print(f"appended {len(rows)} tokens to {kv.layers} layers", file=out)
    golden = None
    if args.check:
        golden = KVCache(kv.layers, kv.kv_heads, kv.head_dim, make_policy(kv), dtype=torch.int64)
        for token in rows:
            for layer, (k, v) in enumerate(token):
                golden.append(layer, *(x.reshape(kv.kv_heads, 1, kv.head_dim) for x in (k, v)))
            golden.compact()
    for layer in args.read:
        got = client.kv_read(layer)
        _print_rows(layer, got, out)
        if golden is not None:
            k, v, pos = golden.read(layer)
            want = [(p, k[:, j].flatten().tolist(), v[:, j].flatten().tolist())
                    for j, p in enumerate(pos.tolist())]
            if got != want:
                raise ValueError(f"KV layer {layer} differs from the golden cache: got "
                                 f"{len(got)} rows, expected {len(want)}")
    if args.check:
        errors = client.signals("kv")["errors"]
        if errors:
            raise ValueError(f"the KV engine counted {errors} errors")
        print(f"layers {args.read} match the golden cache" if args.read
              else "no errors counted (read layers with --read to compare rows)", file=out)


def _kv_read(client, args, out):
    rows = client.kv_read(args.layer)
    _print_rows(args.layer, rows, out)
    if args.out:
        np.savez(args.out, pos=np.array([p for p, _, _ in rows], dtype=np.int64),
                 k=np.array([k for _, k, _ in rows], dtype=np.int64),
                 v=np.array([v for _, _, v in rows], dtype=np.int64))


def _gbu_frame(args):
    """The splats of gbu-tile's frame, binned, and the scene's name: read before a board is
    opened, so that a bad scene or camera costs no connection."""
    scene, options = scene_arguments(args)
    scene, camera, name = load_scene(scene, **options)
    splats = preprocess(scene, camera)
    return splats, bin_splats(splats), name


def _gbu_tile(client, frame, args, out):
    cfg = client.gbu_config()
    splats, tiles, name = frame
    counts = tiles.offsets.diff()
    t = args.tile
    if t is None:
        t = int(counts.masked_fill(counts > cfg.max_gaussians, -1).argmax())
    if not 0 <= t < len(counts):
        raise ValueError(f"gbu-tile: --tile {t}: {name} has tiles 0..{len(counts) - 1}")
    case = tile_case(cfg, splats, tiles, t)
    pixels = client.gbu_tile(case["splats"], cols=case["cols"], rows=case["rows"])
    got = torch.tensor([[*p["color"], p["t"], p["n_contrib"], p["n_blended"]] for p in pixels])
    gx = tiles.grid[0]
    print(f"{name} tile {t} at ({t % gx * cfg.tile}, {t // gx * cfg.tile}): {case['count']} "
          f"Gaussians, {case['cols']}x{case['rows']} pixels inside the image", file=out)
    if args.out:
        rgb = got[:, :3].reshape(cfg.tile, cfg.tile, 3) / (1 << cfg.color_acc_format.f_bits)
        matplotlib.use("Agg")
        from matplotlib import pyplot
        # Each pixel as an 8x8 block: a 16x16 image is too small to look at.
        pyplot.imsave(args.out, np.kron(rgb.clamp(0, 1).numpy(), np.ones((8, 8, 1))))
        print(f"colors written to {args.out}", file=out)
    if args.check:
        wrong = _mismatch("GBU pixels (r, g, b, T, n_contrib, n_blended)", got,
                          torch.tensor(case["pixels"]))
        if wrong:
            raise ValueError(wrong)
        print("matches the golden model", file=out)


def _info(client, out):
    info = client.map["info"]
    print(f"info words match the address map (magic {info['magic']:#010x}, map CRC-32 "
          f"{info['map_crc32']:#010x})", file=out)
    for region in client.map["regions"]:
        last = region["base"] + region["size"] - 1
        print(f"  {region['name']:<12} words {region['base']:#07x}..{last:#07x}", file=out)
    for name, acc in client.map["accelerators"].items():
        streams = ", ".join(f"{port} ({s['direction'].replace('_', ' ')}, {s['payload_bits']} "
                            f"bits)" for port, s in acc["streams"].items())
        print(f"  {name}: {streams}; signals {', '.join(acc['signals']) or 'none'}", file=out)


def main(argv=None, out=None):
    out = sys.stdout if out is None else out
    args = _parser().parse_args(argv)
    try:
        _check_args(args)
        frame = _gbu_frame(args) if args.command == "gbu-tile" else None
        client = _client(args)
        with client.device:
            if args.command == "info":
                _info(client, out)
            elif args.command == "gemm":
                _gemm(client, args, out)
            elif args.command == "kv-step":
                _kv_step(client, args, out)
            elif args.command == "gbu-tile":
                _gbu_tile(client, frame, args, out)
            else:
                _kv_read(client, args, out)
    except (DeviceError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
