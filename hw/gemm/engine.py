"""The tiled tensor engine: ``C = requant(A @ W)`` for any M, K, N on a weight-stationary array.

Tiling (``KT = ceil(K / rows)`` k-tiles, ``NT = ceil(N / cols)`` n-tiles): for each n-tile, for
each k-tile, the array holds ``W[kt, nt]`` and the M activation vectors ``A[:, kt]`` stream
through it (one *pass*); each pass's outputs are summed into an accumulator buffer of M vectors,
and the last k-tile's sums go through the requantizer to ``c``. Activations arrive once: the
first n-tile's passes take them from ``a`` while storing them in the activation buffer, the
later ones read them back. Weights queue in the weight buffer and the array's shadow registers
load the next tile while the current one computes, so in steady state a pass follows the last
with no bubble (when ``M >= 2 * rows + cols - 1``, see
:meth:`~hw.gemm.config.GemmConfig.tile_interval`).
"""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..lib.stream import StreamFIFO
from .config import N_BITS, SHIFT_BITS, GemmConfig
from .requant import ChannelRequantizer
from .systolic import WeightStationaryArray


__all__ = ["TensorEngine"]


class _Loops:
    """The engine's loop nest ``for n0 in range(0, N, cols): for k0 in range(0, K, rows):
    for mi in range(M)`` as counters advanced by :meth:`step` and restarted by :meth:`start`.
    Two copies follow the same nest: the operand feeder and the accumulator."""

    def __init__(self, name, shape):
        self.mi = Signal(shape["m"], name=f"{name}_m")
        self.k0 = Signal(shape["k"], name=f"{name}_k0")
        self.n0 = Signal(shape["n"], name=f"{name}_n0")

    def flags(self, bounds):
        """``(last_m, last_k, last_n)`` against the command's ``bounds`` (registers holding
        ``M - 1``, ``K - rows`` and ``N - cols``, signed)."""
        return (self.mi == bounds["m"], self.k0 >= bounds["k"], self.n0 >= bounds["n"])

    def start(self, m):
        m.d.sync += [self.mi.eq(0), self.k0.eq(0), self.n0.eq(0)]

    def step(self, m, bounds, rows, cols):
        last_m, last_k, _ = self.flags(bounds)
        with m.If(~last_m):
            m.d.sync += self.mi.eq(self.mi + 1)
        with m.Else():
            m.d.sync += self.mi.eq(0)
            with m.If(~last_k):
                m.d.sync += self.k0.eq(self.k0 + rows)
            with m.Else():
                m.d.sync += [self.k0.eq(0), self.n0.eq(self.n0 + cols)]


class TensorEngine(wiring.Component):
    """Tiled GEMM engine with int8 requantized outputs (weight-stationary dataflow).

    Computes ``C[m, n] = sat8(relu?(round(sum_k A[m, k] W[k, n] * mult[n] / 2**shift[n])))``
    exactly as :func:`golden.gemm.requantize` of :func:`golden.gemm.matmul_int`, with
    ``acc_bits`` wrapping accumulators (exact for ``K <= max_k``).

    Parameters
    ----------
    config : GemmConfig
        With ``dataflow="ws"``. Buffers: ``a_buffer_depth`` activation vectors (``rows`` int8
        each), a ``w_buffer_depth`` queue of weight rows, ``acc_buffer_depth`` accumulator
        vectors (``cols`` x ``acc_bits``), all in block RAM.

    Interface attributes
    --------------------
    cmd : In(stream.Signature(StructLayout({"m", "k", "n", "relu"})))
        One GEMM: ``m`` in 1..acc_buffer_depth, ``k`` in 1..max_k, ``n`` in 1..2**16-1, with
        ``m * ceil(k / rows) <= a_buffer_depth`` (the host checks this; other values give
        undefined results). Accepted when the previous GEMM has delivered its last output.
    q : In(stream.Signature(StructLayout({"multiplier", "shift"})))
        Per n-tile, in order: ``multiplier``: ArrayLayout(signed(scale_bits), cols),
        ``shift``: ArrayLayout(unsigned(6), cols) (0..62) for channels ``nt*cols + j``.
        Padding lanes beyond N may hold anything.
    a : In(stream.Signature(ArrayLayout(signed(act_bits), rows)))
        ``A[m, kt*rows + i]`` in lane ``i``, for ``kt`` in 0..KT-1 (outer), ``m`` in 0..M-1
        (inner); lanes beyond K hold 0.
    w : In(stream.Signature(ArrayLayout(signed(weight_bits), cols)))
        ``W[kt*rows + r, nt*cols + j]`` in lane ``j``, for ``nt`` (outer), ``kt``, ``r`` in
        0..rows-1 (inner); rows beyond K hold 0.
    c : Out(stream.Signature(ArrayLayout(signed(8), cols)))
        ``C[m, nt*cols + j]`` in lane ``j``, for ``nt`` (outer), ``m`` (inner); lanes beyond N
        are the requantization of a zero sum (0).

    Every stream tolerates any backpressure and bubbles. Without stalls, a GEMM takes
    :meth:`~hw.gemm.config.GemmConfig.engine_cycles` cycles from its ``cmd`` transfer to its
    last ``c`` transfer.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`~hw.gemm.config.GemmConfig`.
    ValueError
        If ``config.dataflow`` is not ``"ws"`` (the output-stationary engine is not built yet).
    """

    def __init__(self, *, config):
        if not isinstance(config, GemmConfig):
            raise TypeError(f"TensorEngine.config must be a GemmConfig, not {config!r}")
        if config.dataflow != "ws":
            raise ValueError(f"TensorEngine.config.dataflow={config.dataflow!r} is not "
                             f"supported: expected 'ws'")
        self._config = config
        rows, cols = config.rows, config.cols
        super().__init__({
            "cmd": In(stream.Signature(data.StructLayout(self._cmd_layout(config)))),
            "q": In(stream.Signature(data.StructLayout({
                "multiplier": data.ArrayLayout(signed(config.scale_bits), cols),
                "shift": data.ArrayLayout(unsigned(SHIFT_BITS), cols),
            }))),
            "a": In(stream.Signature(data.ArrayLayout(signed(config.act_bits), rows))),
            "w": In(stream.Signature(data.ArrayLayout(signed(config.weight_bits), cols))),
            "c": Out(stream.Signature(data.ArrayLayout(signed(8), cols))),
        })

    @staticmethod
    def _cmd_layout(config):
        return {"m": range(config.acc_buffer_depth + 1), "k": range(config.max_k + 1),
                "n": unsigned(N_BITS), "relu": 1}

    @property
    def config(self):
        """The :class:`~hw.gemm.config.GemmConfig` the engine is built from."""
        return self._config

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        rows, cols = cfg.rows, cfg.cols
        m.submodules.array = array = WeightStationaryArray(config=cfg)
        m.submodules.requant = requant = ChannelRequantizer(config=cfg)
        m.submodules.w_buffer = w_buffer = StreamFIFO(self.w.payload.shape(),
                                                      depth=cfg.w_buffer_depth)
        wiring.connect(m, wiring.flipped(self.w), w_buffer.i)
        wiring.connect(m, w_buffer.o, array.w)
        wiring.connect(m, requant.o, wiring.flipped(self.c))

        # The command, held while it runs; bounds as the loops compare them (signed: K < rows
        # and N < cols make them negative).
        busy = Signal()
        relu = Signal()
        layout = self._cmd_layout(cfg)
        bounds = {"m": Signal(layout["m"], name="bound_m"),
                  "k": Signal(signed(len(self.cmd.payload.k) + 1), name="bound_k"),
                  "n": Signal(signed(N_BITS + 1), name="bound_n")}
        m.d.comb += self.cmd.ready.eq(~busy)
        start = self.cmd.valid & self.cmd.ready
        loop_shape = {"m": layout["m"], "k": range(cfg.max_k + rows),
                      "n": unsigned(N_BITS + 1)}
        feed, accum = (_Loops(name, loop_shape) for name in ("feed", "acc"))
        # The output needs only (mi, n0): its own counters.
        out_m = Signal(layout["m"])
        out_n0 = Signal(loop_shape["n"])
        with m.If(start):
            cmd = self.cmd.payload
            m.d.sync += [busy.eq(1), relu.eq(cmd.relu), bounds["m"].eq(cmd.m - 1),
                         bounds["k"].eq(cmd.k - rows), bounds["n"].eq(cmd.n - cols)]
            for loops in (feed, accum):
                loops.start(m)
            m.d.sync += [out_m.eq(0), out_n0.eq(0)]

        self._feeder(m, array, feed, bounds, start)
        self._accumulator(m, array, requant, accum, bounds, relu, start)

        with m.If(self.c.valid & self.c.ready):
            with m.If(out_m != bounds["m"]):
                m.d.sync += out_m.eq(out_m + 1)
            with m.Else():
                m.d.sync += [out_m.eq(0), out_n0.eq(out_n0 + cols)]
                with m.If(out_n0 >= bounds["n"]):
                    m.d.sync += busy.eq(0)
        return m

    def _feeder(self, m, array, loops, bounds, start):
        """Activation vectors into the array: from ``a`` (stored on the way) in the first
        n-tile, from the activation buffer in the others."""
        cfg = self._config
        m.submodules.a_buffer = a_buffer = Memory(shape=self.a.payload.shape(),
                                                  depth=cfg.a_buffer_depth, init=[])
        write = a_buffer.write_port()
        read = a_buffer.read_port()
        feeding = Signal()
        addr = Signal(range(cfg.a_buffer_depth))
        # One output register stage (valid, swap, source); buffer reads land beside it.
        valid = Signal()
        swap = Signal()
        from_input = Signal()
        held = Signal(self.a.payload.shape())
        advance = ~valid | array.a.ready
        last_m, last_k, last_n = loops.flags(bounds)
        first_pass = loops.n0 == 0
        m.d.comb += [
            self.a.ready.eq(feeding & advance & first_pass),
            write.addr.eq(addr), write.data.eq(self.a.payload),
            write.en.eq(self.a.valid & self.a.ready),
            read.addr.eq(addr), read.en.eq(advance),
            array.a.valid.eq(valid),
            array.a.payload.swap.eq(swap),
            array.a.payload.data.eq(Mux(from_input, held.as_value(), read.data.as_value())),
        ]
        issue = feeding & advance & (~first_pass | self.a.valid)
        with m.If(advance):
            m.d.sync += valid.eq(issue)
        with m.If(issue):
            m.d.sync += [swap.eq(loops.mi == 0), from_input.eq(first_pass),
                         held.eq(self.a.payload)]
            loops.step(m, bounds, cfg.rows, cfg.cols)
            m.d.sync += addr.eq(Mux(last_m & last_k, 0, addr + 1))
            with m.If(last_m & last_k & last_n):
                m.d.sync += feeding.eq(0)
        with m.If(start):
            m.d.sync += [feeding.eq(1), addr.eq(0)]

    def _accumulator(self, m, array, requant, loops, bounds, relu, start):
        """Array outputs summed into the accumulator buffer; the last k-tile's sums, with the
        n-tile's scales from ``q``, into the requantizer."""
        cfg = self._config
        acc_shape = data.ArrayLayout(signed(cfg.acc_bits), cfg.cols)
        m.submodules.acc_buffer = acc_buffer = Memory(shape=acc_shape,
                                                      depth=cfg.acc_buffer_depth, init=[])
        write = acc_buffer.write_port()
        # Transparent: with M = 1 a sum may be read in the cycle it is written.
        read = acc_buffer.read_port(transparent_for=(write,))

        # The n-tile's scales, taken from `q` before its first requantized vector.
        scales = Signal(self.q.payload.shape())
        have_scales = Signal()
        m.d.comb += self.q.ready.eq(~have_scales)
        with m.If(self.q.valid & self.q.ready):
            m.d.sync += [scales.eq(self.q.payload), have_scales.eq(1)]

        # One register stage: the array's vector, its place in the loops, and the buffer
        # read of its accumulator landing beside it.
        valid = Signal()
        vector = Signal(acc_shape)
        first_k = Signal()
        last_k = Signal()
        end_of_tile = Signal()
        addr = Signal.like(loops.mi)
        go = valid & (~last_k | (requant.i.ready & have_scales))
        take = ~valid | go
        took = array.c.valid & take
        flag_m, flag_k, _ = loops.flags(bounds)
        m.d.comb += [array.c.ready.eq(take), read.addr.eq(loops.mi), read.en.eq(take)]
        with m.If(take):
            m.d.sync += valid.eq(took)
        with m.If(took):
            m.d.sync += [vector.eq(array.c.payload), first_k.eq(loops.k0 == 0),
                         last_k.eq(flag_k), end_of_tile.eq(flag_m & flag_k),
                         addr.eq(loops.mi)]
            loops.step(m, bounds, cfg.rows, cfg.cols)

        sums = Signal(acc_shape)
        for n in range(cfg.cols):
            m.d.comb += sums[n].eq(Mux(first_k, 0, read.data[n]) + vector[n])
        m.d.comb += [
            write.addr.eq(addr), write.data.eq(sums), write.en.eq(valid & ~last_k),
            requant.i.valid.eq(valid & last_k & have_scales),
            requant.i.payload.acc.eq(sums),
            requant.i.payload.multiplier.eq(scales.multiplier),
            requant.i.payload.shift.eq(scales.shift),
            requant.i.payload.relu.eq(relu),
        ]
        with m.If(go & last_k & end_of_tile):
            m.d.sync += have_scales.eq(0)
