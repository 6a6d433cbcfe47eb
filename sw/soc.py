# amaranth: UnusedElaboratable=no
# (SoCClient.gemm makes a TensorEngine for its payload layouts only; it is never elaborated.)
"""Host side of the SoC (:class:`hw.soc.soc.SoC`): its streams over a :class:`~sw.device.Device`,
and the accelerators' jobs on top (a GEMM on the tensor engine, a step of the KV cache, a tile
on the Gaussian Blending Unit).

The address map (``address_map.json`` beside the bitstream, or :meth:`SoC.address_map`) says
where each stream window is and how many words an item takes; the client checks it against the
``info`` words of the board before anything else. A stream window's word 0 counts the items it
can take (to the device) or holds (from the device), so the client never makes the bus wait:
:meth:`SoCClient.exchange` moves what fits, reads what is there, and goes round until every
stream is done.

The command line front end is :mod:`sw.soc_cli` (``python -m sw.soc``).
"""

import math

import torch

from hw.gbu.core import pixel_layout, splat_layout, tile_layout
from hw.gemm.engine import TensorEngine
from hw.kv.cache import Op, Status, command_layout, response_layout
from hw.soc.config import SoCConfig
from sim.packing import pack, unpack
from sw.gemm import GemmJob, engine_streams

from .device import DeviceError


__all__ = ["SIM_SOC_CONFIG", "SoCClient", "StreamStalled", "simulated_client"]

_WORD_BITS = 32

#: A SoC that keeps ``amaranth.sim`` fast: 4 clocks per bit, blocks long enough that a KV step
#: takes few frames, a 2x2 tensor engine, the smallest LaCache engine (17 layers: R >= 1 with
#: the default span of 16) and no GBU (its row setup alone would double the simulated logic).
#: The bus timeout is shorter than the idle timeout, which is what the driver waits for an
#: answer beyond the line time.
SIM_SOC_CONFIG = SoCConfig(clock_hz=1_000_000, baud=250_000, idle_timeout_us=100,
                           bus_timeout_cycles=64, max_words=64, window_depth=16, gemm_rows=2,
                           gemm_cols=2, kv_layers=17, gbu_lanes=0)


class StreamStalled(DeviceError):
    """No stream moved for many rounds: the device is waiting for something the host did not
    send (or the host for something the device never makes)."""


class SoCClient:
    """The SoC's accelerators through ``device``.

    Parameters
    ----------
    device : sw.device.Device
    address_map : dict
        As :meth:`hw.soc.soc.SoC.address_map` returns it (or ``address_map.json``).
    max_idle_rounds : int
        Rounds without progress on any stream after which :meth:`exchange` gives up.

    Raises
    ------
    DeviceError
        If the board's ``info`` words do not match ``address_map`` (another bitstream).
    """

    def __init__(self, device, address_map, *, max_idle_rounds=200):
        self.device = device
        self.map = address_map
        self.max_idle_rounds = max_idle_rounds
        self._bases = {r["name"]: r["base"] for r in address_map["regions"]}
        info = address_map["info"]
        got = device.read_block(self._bases["info"], 2)
        if got != [info["magic"], info["map_crc32"]]:
            raise DeviceError(f"the board's info words {[hex(w) for w in got]} do not match the "
                              f"address map ({info['magic']:#x}, {info['map_crc32']:#x}): it "
                              f"runs another bitstream or configuration")
        self.config = SoCConfig.from_dict(address_map["config"])

    def _stream(self, accelerator, port):
        return self.map["accelerators"][accelerator]["streams"][port]

    # Streams -----------------------------------------------------------------------------------

    def exchange(self, accelerator, sends, receives):
        """Send items to and receive items from the streams of ``accelerator``.

        Parameters
        ----------
        sends : dict
            ``{port: [payload as int, ...]}`` for streams to the device, sent in order.
        receives : dict
            ``{port: count}`` for streams from the device.

        Returns
        -------
        dict
            ``{port: [payload as int, ...]}`` received.
        """
        pending = {port: list(items) for port, items in sends.items()}
        got = {port: [] for port in receives}
        idle = 0
        while any(pending.values()) or any(len(got[p]) < n for p, n in receives.items()):
            moved = 0
            for port, items in pending.items():
                moved += self._send_some(accelerator, port, items)
            for port, count in receives.items():
                moved += self._receive_some(accelerator, port, got[port], count)
            idle = 0 if moved else idle + 1
            if idle > self.max_idle_rounds:
                raise StreamStalled(
                    f"{accelerator}: no stream moved in {idle} rounds; still to send "
                    f"{ {p: len(i) for p, i in pending.items() if i} }, still to receive "
                    f"{ {p: n - len(got[p]) for p, n in receives.items() if len(got[p]) < n} }")
        return got

    def _send_some(self, accelerator, port, items):
        if not items:
            return 0
        stream = self._stream(accelerator, port)
        base, per_item = self._bases[stream["region"]], stream["words_per_item"]
        room = self.device.read_reg(base)
        count = min(room, len(items), self.device.max_words // per_item)
        if count:
            words = [w for item in items[:count] for w in _words(item, per_item)]
            self.device.write_block(base + 1, words)
            del items[:count]
        return count

    def _receive_some(self, accelerator, port, got, count):
        if len(got) >= count:
            return 0
        stream = self._stream(accelerator, port)
        base, per_item = self._bases[stream["region"]], stream["words_per_item"]
        waiting = self.device.read_reg(base)
        n = min(waiting, count - len(got), self.device.max_words // per_item)
        if n:
            words = self.device.read_block(base + 1, n * per_item)
            got += [sum(w << (_WORD_BITS * j) for j, w in enumerate(words[i:i + per_item]))
                    for i in range(0, len(words), per_item)]
        return n

    def signals(self, accelerator):
        """The accelerator's status signals as ``{name: int}``."""
        widths = self.map["accelerators"][accelerator]["signals"]
        words = self.device.read_block(self._bases[f"{accelerator}_signals"],
                                       sum(math.ceil(w / _WORD_BITS) for w in widths.values()))
        out = {}
        for name, width in widths.items():
            n = math.ceil(width / _WORD_BITS)
            out[name] = sum(w << (_WORD_BITS * j) for j, w in enumerate(words[:n]))
            words = words[n:]
        return out

    # Tensor engine -----------------------------------------------------------------------------

    def gemm(self, a, w, multiplier, shift, *, relu=False):
        """``requant(a @ w)`` on the tensor engine, int8 (M, N) as ``torch.int64``; the operands
        are checked as :class:`sw.gemm.GemmJob` checks them."""
        job = GemmJob(self.gemm_config(), a, w, multiplier, shift, relu=relu)
        engine = TensorEngine(config=self.config.gemm)
        sends = {port: [pack(getattr(engine, port).payload.shape(), p) for p in payloads]
                 for port, payloads in engine_streams(job).items()}
        m, k, n = job.shape
        cols = self.config.gemm.cols
        tiles = math.ceil(n / cols)
        words = self.exchange("gemm", sends, {"c": m * tiles})["c"]
        shape = engine.c.payload.shape()
        c = torch.tensor([[unpack(shape, v)[j] for j in range(cols)] for v in words],
                         dtype=torch.int64)
        return c.reshape(tiles, m, cols).permute(1, 0, 2).reshape(m, tiles * cols)[:, :n]

    # KV cache ----------------------------------------------------------------------------------

    def kv_step(self, rows, *, append=False):
        """Append one token: ``rows[layer] = (k, v)``, each ``kv_heads * head_dim`` integers of
        ``elem_bits``, written to every layer, then committed (compacting when due). With
        ``append``, the token is appended without compaction (a prefill: every token but the
        last with ``append``, then the last without, which compacts once)."""
        cfg = self.kv_config()
        if len(rows) != cfg.layers:
            raise ValueError(f"kv_step: expected a (k, v) row for each of the {cfg.layers} "
                             f"layers, got {len(rows)}")
        layout = command_layout(cfg)
        commands = [pack(layout, {"op": Op.WRITE, "layer": layer,
                                  "row": {"k": _row(cfg, k, "k"), "v": _row(cfg, v, "v")}})
                    for layer, (k, v) in enumerate(rows)]
        commands.append(pack(layout, {"op": Op.APPEND if append else Op.COMMIT, "layer": 0}))
        self.exchange("kv", {"cmd": commands}, {})

    def kv_read(self, layer):
        """Every kept row of ``layer`` in logical order: ``[(pos, k, v), ...]`` (``k`` and ``v``
        as lists of integers); ``[]`` before the first step."""
        cfg = self.kv_config()
        if not 0 <= layer < cfg.layers:
            raise ValueError(f"kv_read: layer {layer} does not exist: expected 0..{cfg.layers - 1}")
        self.exchange("kv", {"cmd": [pack(command_layout(cfg), {"op": Op.READ, "layer": layer})]},
                      {})
        out = []
        layout = response_layout(cfg)
        while True:
            rsp = unpack(layout, self.exchange("kv", {}, {"rsp": 1})["rsp"][0])
            if rsp.status != Status.ROW:
                return out
            k, v = (_elements(cfg, getattr(rsp.row, f)) for f in ("k", "v"))
            out.append((int(rsp.pos), k, v))
            if rsp.last:
                return out

    # Gaussian Blending Unit --------------------------------------------------------------------

    def gbu_tile(self, splats, *, cols=16, rows=16):
        """Shade one tile on the GBU and return its pixels, row-major.

        ``splats`` are the tile's Gaussians front to back, each a dict of raw integers of the
        GBU's formats (``mx``, ``my`` tile-relative, ``a``, ``b``, ``c``, ``o``, ``color``, and
        the row range ``rows_above``, ``rows_below``, which may be left out: 0, every row is set
        up; as :func:`sim.gbu_vectors.splat_payloads` quantizes them); the first ``cols``
        columns and ``rows`` rows of the tile are inside the image. Each pixel is a dict:
        ``color`` (3 raw ``color_acc_format`` values, background included), ``t`` (final T,
        raw), ``n_contrib``, ``n_blended``."""
        cfg = self.gbu_config()
        if len(splats) > cfg.max_gaussians:
            raise ValueError(f"gbu_tile: {len(splats)} Gaussians, more than this GBU's "
                             f"max_gaussians={cfg.max_gaussians}")
        for name, value in (("cols", cols), ("rows", rows)):
            if not 1 <= value <= cfg.tile:
                raise ValueError(f"gbu_tile: {name}={value}: expected 1..{cfg.tile}")
        sends = {"tile": [pack(tile_layout(cfg), {"count": len(splats), "cols": cols,
                                                  "rows": rows})],
                 "splats": [pack(splat_layout(cfg), s) for s in splats]}
        words = self.exchange("gbu", sends, {"pixels": cfg.tile * cfg.tile})["pixels"]
        layout = pixel_layout(cfg)
        return [{"color": [int(c) for c in p.color], "t": int(p.t),
                 "n_contrib": int(p.n_contrib), "n_blended": int(p.n_blended)}
                for p in (unpack(layout, w) for w in words)]

    def gemm_config(self):
        """The tensor engine's :class:`~hw.gemm.config.GemmConfig`; a ``DeviceError`` if the SoC
        has none."""
        if self.config.gemm is None:
            raise DeviceError("this SoC has no tensor engine (gemm_rows=0)")
        return self.config.gemm

    def gbu_config(self):
        """The Gaussian Blending Unit's :class:`~hw.gbu.config.GBUConfig`; a ``DeviceError`` if
        the SoC has none."""
        if self.config.gbu is None:
            raise DeviceError("this SoC has no Gaussian Blending Unit (gbu_lanes=0)")
        return self.config.gbu

    def kv_config(self):
        """The KV-cache engine's :class:`~hw.kv.designs.KVEngineConfig`; a ``DeviceError`` if
        the SoC has none."""
        if self.config.kv is None:
            raise DeviceError("this SoC has no KV-cache engine (kv_layers=0)")
        return self.config.kv


def simulated_client(config=SIM_SOC_CONFIG):
    """A :class:`SoCClient` on the SoC gateware of ``config`` in ``amaranth.sim``, reached
    through its UART pins (:class:`sw.device.SimTransport`); a fresh SoC on every call."""
    from hw.soc.soc import SoC
    from .device import Device, SimTransport
    soc = SoC(config=config)
    device = Device(SimTransport(config.host, core=soc), max_words=config.max_words)
    return SoCClient(device, soc.address_map())


def _words(value, count):
    return [(value >> (_WORD_BITS * j)) & 0xFFFF_FFFF for j in range(count)]


def _row(config, elements, name):
    elements = list(elements)
    n = config.kv_heads * config.head_dim
    if len(elements) != n or any(not 0 <= e < 1 << config.elem_bits for e in elements):
        raise ValueError(f"kv_step: {name} must be {n} integers of 0..{(1 << config.elem_bits) - 1}")
    return sum(e << (n_ * config.elem_bits) for n_, e in enumerate(elements))


def _elements(config, packed):
    mask = (1 << config.elem_bits) - 1
    return [(packed >> (n * config.elem_bits)) & mask
            for n in range(config.kv_heads * config.head_dim)]


if __name__ == "__main__":
    # ``python -m sw.soc``: the command line lives in sw.soc_cli, apart from the client.
    from sw.soc_cli import main
    raise SystemExit(main())
