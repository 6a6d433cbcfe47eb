"""The tiled tensor engine: ``C = requant(A @ W)`` for any M, K, N on any array of
:data:`~hw.gemm.config.ARRAYS` and :data:`~hw.gemm.config.DATAFLOWS`.

Weight-stationary (the systolic array or the dot-product engine; ``KT = ceil(K / rows)``
k-tiles, ``NT = ceil(N / cols)`` n-tiles): for each n-tile, for each k-tile, the array holds
``W[kt, nt]`` and the M activation vectors ``A[:, kt]`` stream through it (one *pass*); each
pass's outputs are summed into an accumulator buffer of M vectors, and the last k-tile's sums go
through the requantizer to ``c``. Weights queue in the weight buffer and the array's shadow
registers load the next tile while the current one computes, so in steady state a pass follows
the last with no bubble (when M reaches :meth:`~hw.gemm.config.GemmConfig.tile_interval`).

Output-stationary (``MT = ceil(M / rows)`` m-tiles): for each n-tile, for each m-tile, the K
slices ``(A[mt, k], W[k, nt])`` stream through the array, which accumulates the whole sum in its
PEs; the tile's rows go through the requantizer to ``c`` (rows past M are dropped).

Both operands arrive once: the first n-tile takes the activations from ``a`` while storing them
in the activation buffer, the later ones read them back; output-stationary, the first m-tile of
each n-tile likewise stores the weight rows, the later ones read them back.

Every block RAM has its output register (:class:`~hw.lib.block_ram.RegisteredRAM`), and no clock
enable fans out from a consumer's ``ready``: between the operand buffers and the array, and
between the array and ``c``, the pipelines never stop and feed a
:class:`~hw.lib.stream.CreditFIFO`, with items started only against credits for its entries.
"""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..lib.block_ram import RegisteredRAM
from ..lib.component import ConfiguredComponent, check_config
from ..lib.stream import CreditFIFO, StreamFIFO
from .config import (ENGINE_ACC_STAGES, ENGINE_FEED_STAGES, ENGINE_QUEUE_LATENCY, N_BITS,
                     SHIFT_BITS, GemmConfig)
from .dot_product import DotProductEngine
from .requant import ChannelRequantizer
from .systolic import OutputStationaryArray, WeightStationaryArray, _register


__all__ = ["TensorEngine"]

#: Cycles from a credit's spend to its reuse, beyond the pipeline it covers: the queue's, the
#: registered return and the registered check.
_CREDIT_LOOP = ENGINE_QUEUE_LATENCY + 2


class _Loops:
    """A loop nest ``for outer: for mid: for inner`` as counters advanced by :meth:`step` and
    restarted by :meth:`start`: ``inner`` steps by 1 up to its bound, ``mid`` and ``outer`` by
    their steps until they reach or pass theirs (registers holding the last value, signed:
    a dimension smaller than one tile makes them negative)."""

    def __init__(self, name, shapes):
        self.inner, self.mid, self.outer = (Signal(shape, name=f"{name}_{part}")
                                            for part, shape in zip(("inner", "mid", "outer"),
                                                                   shapes))

    def flags(self, bounds):
        """``(last_inner, last_mid, last_outer)`` against ``bounds``."""
        return (self.inner == bounds[0], self.mid >= bounds[1], self.outer >= bounds[2])

    def start(self, m):
        m.d.sync += [self.inner.eq(0), self.mid.eq(0), self.outer.eq(0)]

    def step(self, m, bounds, mid_step, outer_step):
        last_inner, last_mid, _ = self.flags(bounds)
        with m.If(~last_inner):
            m.d.sync += self.inner.eq(self.inner + 1)
        with m.Else():
            m.d.sync += self.inner.eq(0)
            with m.If(~last_mid):
                m.d.sync += self.mid.eq(self.mid + mid_step)
            with m.Else():
                m.d.sync += [self.mid.eq(0), self.outer.eq(self.outer + outer_step)]


def _credits(m, depth, spend, give_back, name):
    """A flag, high while one more item may be started into a ``depth``-entry pipeline and
    queue: the caller starts one where ``spend`` is high (and only where the flag is), and one
    leaves where ``give_back``. Both are registered before they are counted, and the flag is a
    register loaded with next cycle's check, so nothing here hangs off a handshake."""
    outstanding = Signal(range(depth + 1), name=f"{name}_outstanding")
    spent = _register(m, spend, f"{name}_spent")
    returned = _register(m, give_back, f"{name}_returned")
    outstanding_next = Signal.like(outstanding, name=f"{name}_next")
    m.d.comb += outstanding_next.eq(outstanding + spent - returned)
    ok = Signal(init=1, name=f"{name}_ok")
    m.d.sync += [outstanding.eq(outstanding_next), ok.eq(outstanding_next + spend < depth)]
    return ok


class TensorEngine(ConfiguredComponent):
    """Tiled GEMM engine with int8 requantized outputs, on the array ``config`` selects.

    Computes ``C[m, n] = sat8(relu?(round(sum_k A[m, k] W[k, n] * mult[n] / 2**shift[n])))``
    exactly as :func:`golden.gemm.requantize` of :func:`golden.gemm.matmul_int`, with
    ``acc_bits`` wrapping accumulators (exact for ``K <= max_k``).

    Parameters
    ----------
    config : GemmConfig
        ``array`` and ``dataflow`` select the array: the weight-stationary systolic array
        (:class:`~hw.gemm.systolic.WeightStationaryArray`), the output-stationary one
        (:class:`~hw.gemm.systolic.OutputStationaryArray`) or the dot-product engine
        (:class:`~hw.gemm.dot_product.DotProductEngine`). Buffers, all in block RAM:
        ``a_buffer_depth`` activation vectors (``rows`` int8 each); weight-stationary, a
        ``w_buffer_depth`` queue of weight rows and ``acc_buffer_depth`` accumulator vectors
        (``cols`` x ``acc_bits``); output-stationary, ``w_buffer_depth`` weight rows.

    Interface attributes
    --------------------
    cmd : In(stream.Signature(StructLayout({"m", "k", "n", "relu"})))
        One GEMM: ``m`` in 1..acc_buffer_depth (``ws``; any up to ``a_buffer_depth * rows``
        for ``os``), ``k`` in 1..max_k, ``n`` in 1..2**16-1, with
        ``m * ceil(k / rows) <= a_buffer_depth`` (``ws``), ``ceil(m / rows) * k <=
        a_buffer_depth`` and ``k <= w_buffer_depth`` (``os``) (the host checks this; other
        values give undefined results). Accepted when the previous GEMM has delivered its last
        output.
    q : In(stream.Signature(StructLayout({"multiplier", "shift"})))
        Per n-tile, in order: ``multiplier``: ArrayLayout(signed(scale_bits), cols),
        ``shift``: ArrayLayout(unsigned(6), cols) (0..62) for channels ``nt*cols + j``.
        Padding lanes beyond N may hold anything.
    a : In(stream.Signature(ArrayLayout(signed(act_bits), rows)))
        ``ws``: ``A[m, kt*rows + i]`` in lane ``i``, for ``kt`` in 0..KT-1 (outer), ``m`` in
        0..M-1 (inner); lanes beyond K hold 0. ``os``: ``A[mt*rows + i, k]`` in lane ``i``, for
        ``mt`` in 0..MT-1 (outer), ``k`` in 0..K-1 (inner); lanes beyond M hold 0.
    w : In(stream.Signature(ArrayLayout(signed(weight_bits), cols)))
        ``W[k, nt*cols + j]`` in lane ``j``, for ``nt`` (outer) and ``k`` (inner): ``ws``, ``k``
        in 0..KT*rows-1 (rows beyond K hold 0); ``os``, ``k`` in 0..K-1. Lanes beyond N hold 0.
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
    """

    def __init__(self, *, config):
        check_config("TensorEngine", config, GemmConfig)
        if config.array == "dot-product":
            self._array_cls = DotProductEngine
        elif config.dataflow == "ws":
            self._array_cls = WeightStationaryArray
        else:
            self._array_cls = OutputStationaryArray
        rows, cols = config.rows, config.cols
        super().__init__(config, {
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
        m_max = (config.acc_buffer_depth if config.dataflow == "ws"
                 else config.a_buffer_depth * config.rows)
        return {"m": range(m_max + 1), "k": range(config.max_k + 1),
                "n": unsigned(N_BITS), "relu": 1}


    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        rows, cols = cfg.rows, cfg.cols
        ws = cfg.dataflow == "ws"
        m.submodules.array = array = self._array_cls(config=cfg)
        m.submodules.requant = requant = ChannelRequantizer(config=cfg)

        # The command, held while it runs, and the loops' bounds (last values).
        busy = Signal()
        relu = Signal()
        layout = self._cmd_layout(cfg)
        bound_m = Signal(layout["m"])
        bound_k = Signal(signed(len(self.cmd.payload.k) + 1))
        bound_mt = Signal(signed(len(self.cmd.payload.m) + 1))
        bound_n = Signal(signed(N_BITS + 1))
        m.d.comb += self.cmd.ready.eq(~busy)
        start = self.cmd.valid & self.cmd.ready
        cmd = self.cmd.payload
        with m.If(start):
            m.d.sync += [busy.eq(1), relu.eq(cmd.relu), bound_m.eq(cmd.m - 1),
                         bound_k.eq(cmd.k - rows if ws else cmd.k - 1),
                         bound_mt.eq(cmd.m - rows), bound_n.eq(cmd.n - cols)]
        m_shape, n_shape = layout["m"], unsigned(N_BITS + 1)
        if ws:
            # inner: m, mid: k0 (by rows), outer: n0 (by cols).
            bounds = (bound_m, bound_k, bound_n)
            shapes = (m_shape, range(cfg.max_k + rows), n_shape)
        else:
            # inner: k, mid: m0 (by rows), outer: n0 (by cols).
            bounds = (bound_k, bound_mt, bound_n)
            shapes = (range(cfg.max_k + 1), range(layout["m"].stop + rows), n_shape)
        feed = _Loops("feed", shapes)
        with m.If(start):
            feed.start(m)

        self._feeder(m, array, feed, bounds, start)

        # Every output the collector starts towards the requantizer has a credit in the output
        # queue.
        stages = ENGINE_ACC_STAGES[cfg.dataflow] + cfg.requant_latency
        m.submodules.out_queue = out_queue = CreditFIFO(self.c.payload.shape(),
                                                        depth=stages + _CREDIT_LOOP)
        wiring.connect(m, requant.o, out_queue.i)
        wiring.connect(m, out_queue.o, wiring.flipped(self.c))
        spend = Signal()
        ok = _credits(m, out_queue.depth, spend, self.c.valid & self.c.ready, "out")
        collect = self._accumulator if ws else self._row_collector
        collect(m, array, requant, bounds, bound_m, shapes, relu, start, ok, spend)

        # The output needs only (m, n0): its own counters.
        out_m = Signal(m_shape)
        out_n0 = Signal(n_shape)
        with m.If(start):
            m.d.sync += [out_m.eq(0), out_n0.eq(0)]
        with m.If(self.c.valid & self.c.ready):
            with m.If(out_m != bound_m):
                m.d.sync += out_m.eq(out_m + 1)
            with m.Else():
                m.d.sync += [out_m.eq(0), out_n0.eq(out_n0 + cols)]
                with m.If(out_n0 >= bound_n):
                    m.d.sync += busy.eq(0)
        return m

    def _feeder(self, m, array, loops, bounds, start):
        """Operands into the array: activations from ``a`` (stored on the way) in the first
        n-tile, from the activation buffer in the others; output-stationary, weight rows from
        ``w`` (stored on the way) in the first m-tile of each n-tile, from the weight buffer in
        the others; weight-stationary, ``w`` through the weight queue into the array."""
        cfg = self._config
        ws = cfg.dataflow == "ws"
        target = array.a if ws else array.i
        m.submodules.feed_queue = queue = CreditFIFO(target.payload.shape(),
                                                     depth=ENGINE_FEED_STAGES + _CREDIT_LOOP)
        wiring.connect(m, queue.o, target)
        spend = Signal()
        ok = _credits(m, queue.depth, spend, target.valid & target.ready, "feed")

        last_inner, last_mid, last_outer = loops.flags(bounds)
        # An n-tile of a single operand vector reads it back in the cycle after it was stored,
        # before the buffer has it: it is then taken from the input register instead.
        single = (bounds[0] == 0) & (bounds[1] <= 0)
        feeding = Signal()
        go = feeding & ok
        a_first = loops.outer == 0
        if ws:
            m.submodules.w_buffer = w_buffer = StreamFIFO(self.w.payload.shape(),
                                                          depth=cfg.w_buffer_depth)
            wiring.connect(m, wiring.flipped(self.w), w_buffer.i)
            wiring.connect(m, w_buffer.o, array.w)
            m.d.comb += self.a.ready.eq(go & a_first)
            issue = go & (~a_first | self.a.valid)
        else:
            w_first = loops.mid == 0
            a_wait = a_first & ~self.a.valid
            w_wait = w_first & ~self.w.valid
            m.d.comb += [self.a.ready.eq(go & a_first & ~w_wait),
                         self.w.ready.eq(go & w_first & ~a_wait)]
            issue = go & ~a_wait & ~w_wait
        m.d.comb += spend.eq(issue)

        a_addr = Signal(range(max(2, cfg.a_buffer_depth)))
        with m.If(issue):
            m.d.sync += a_addr.eq(Mux(last_inner & last_mid, 0, a_addr + 1))
        with m.If(start):
            m.d.sync += a_addr.eq(0)
        a_data = self._buffered(m, "a", cfg.a_buffer_depth, a_addr, a_first, issue, single)
        with m.If(issue):
            loops.step(m, bounds, cfg.rows, cfg.cols)
            with m.If(last_inner & last_mid & last_outer):
                m.d.sync += feeding.eq(0)
        with m.If(start):
            m.d.sync += feeding.eq(1)

        valid = _register(m, _register(m, issue, "feed_valid_1"), "feed_valid_2")
        m.d.comb += queue.i.valid.eq(valid)
        if ws:
            swap = _register(m, _register(m, loops.inner == 0, "swap_1", True), "swap_2", True)
            m.d.comb += [queue.i.payload.data.eq(a_data), queue.i.payload.swap.eq(swap)]
        else:
            w_data = self._buffered(m, "w", cfg.w_buffer_depth, loops.inner, w_first, issue,
                                    bounds[0] == 0)
            last = _register(m, _register(m, last_inner, "last_1", True), "last_2", True)
            m.d.comb += [queue.i.payload.a.eq(a_data), queue.i.payload.w.eq(w_data),
                         queue.i.payload.last.eq(last)]

    def _buffered(self, m, port, depth, addr, first, issue, single):
        """The operand of stream ``port`` for the vector issued (where ``issue``)
        :data:`~hw.gemm.config.ENGINE_FEED_STAGES` cycles ago: taken from the port and stored
        at ``addr`` in a buffer of ``depth`` vectors where ``first``, read back from ``addr``
        otherwise. ``single``: every read is of the one vector last taken from the port."""
        stream_in = getattr(self, port)
        width = len(stream_in.payload.as_value())
        ram = RegisteredRAM(width=width, depth=max(2, depth))
        m.submodules[f"{port}_buffer"] = ram
        taken = stream_in.valid & stream_in.ready
        m.d.comb += [ram.w_en.eq(taken), ram.w_addr.eq(addr),
                     ram.w_data.eq(stream_in.payload),
                     ram.r_en.eq(issue), ram.r_addr.eq(addr)]
        held = Signal(width, name=f"{port}_held", reset_less=True)
        with m.If(taken):
            m.d.sync += held.eq(stream_in.payload)
        from_input = _register(m, _register(m, first, f"{port}_from_input_1", True),
                               f"{port}_from_input_2", True)
        return Mux(from_input | single, _register(m, held, f"{port}_held_2", True), ram.r_data)

    def _scales(self, m):
        """``(scales, have, release)``: the n-tile's scales while ``have``; the caller drives
        ``release`` high as the n-tile's last output starts. The next n-tile's scales wait in a
        second register, so that they take over with no bubble."""
        scales = Signal(self.q.payload.shape())
        have = Signal()
        release = Signal()
        pending = Signal(self.q.payload.shape())
        has_pending = Signal()
        m.d.comb += self.q.ready.eq(~has_pending)
        move = (~have | release) & has_pending
        with m.If(move):
            m.d.sync += [scales.eq(pending), have.eq(1)]
        with m.Elif(release):
            m.d.sync += have.eq(0)
        with m.If(self.q.valid & self.q.ready):
            m.d.sync += [pending.eq(self.q.payload), has_pending.eq(1)]
        with m.Elif(move):
            m.d.sync += has_pending.eq(0)
        return scales, have, release

    def _to_requant(self, m, requant, valid, acc, scales, relu):
        m.d.comb += [
            requant.i.valid.eq(valid),
            requant.i.payload.acc.eq(acc),
            requant.i.payload.multiplier.eq(scales.multiplier),
            requant.i.payload.shift.eq(scales.shift),
            requant.i.payload.relu.eq(relu),
        ]

    def _accumulator(self, m, array, requant, bounds, bound_m, shapes, relu, start, ok, spend):
        """Weight-stationary: the array's outputs summed into the accumulator buffer; the last
        k-tile's sums, with the n-tile's scales, into the requantizer.

        The sum of an output is read from the buffer when its array vector is taken and
        written back :data:`~hw.gemm.config.ENGINE_ACC_STAGES` cycles later; the previous
        pass's sum of the same output (the M-th vector before) may be later than that read when
        M is small or after a stall, and is then forwarded from the pipeline (the newest vector
        with the same address is that one: the addresses in between are the other M - 1)."""
        cfg = self._config
        loops = _Loops("acc", shapes)
        with m.If(start):
            loops.start(m)
        scales, have_scales, release = self._scales(m)
        last_inner, last_mid, _ = loops.flags(bounds)
        take = ~last_mid | (ok & have_scales)
        took = array.c.valid & take
        m.d.comb += [array.c.ready.eq(take), spend.eq(took & last_mid)]
        with m.If(took):
            loops.step(m, bounds, cfg.rows, cfg.cols)
        m.d.comb += release.eq(took & last_inner & last_mid)

        acc_shape = data.ArrayLayout(signed(cfg.acc_bits), cfg.cols)
        ram = RegisteredRAM(width=acc_shape.size, depth=max(2, cfg.acc_buffer_depth))
        m.submodules.acc_buffer = ram
        m.d.comb += [ram.r_en.eq(took), ram.r_addr.eq(loops.inner)]

        def stage(n, previous):
            valid, vector, first, last, addr, tile_scales = previous
            return (_register(m, valid, f"acc_valid_{n}"),
                    _register(m, vector, f"acc_vector_{n}", True),
                    _register(m, first, f"acc_first_{n}", True),
                    _register(m, last, f"acc_last_{n}", True),
                    _register(m, addr, f"acc_addr_{n}", True),
                    _register(m, tile_scales, f"acc_scales_{n}", True))

        s1 = stage(1, (took, array.c.payload, loops.mid == 0, last_mid, loops.inner, scales))
        s2 = stage(2, s1)
        s3 = stage(3, s2)
        s4 = stage(4, s3)
        total = Signal(acc_shape, name="acc_sum")
        # The vectors after the sum (newest first): the sum itself, then three more cycles,
        # until the buffer returns what it wrote.
        history = [(s4[0], s4[4], total)]
        for n in range(1, 4):
            history.append(tuple(_register(m, value, f"acc_history_{n}_{part}", part != "valid")
                                 for value, part in zip(history[-1], ("valid", "addr", "sum"))))

        # Which stage holds the previous sum of the vector now in stage 2 is known a cycle
        # earlier, so the forwarding muxes are selected by flip-flops: stage 3 (the sum of
        # the vector just ahead is added in as it leaves the adder), else the history.
        def same(valid, addr):
            return valid & (addr == s1[4])

        chain = _register(m, _register(m, same(s2[0], s2[4]), "acc_chain_2", True) & ~s2[2],
                          "acc_chain_3", True)
        ahead = [same(s3[0], s3[4])] + [same(valid, addr) for valid, addr, _ in history[:3]]
        matches = [_register(m, flag, f"acc_match_{n}", True) for n, flag in enumerate(ahead)]
        old = ram.r_data
        for match, (_, _, value) in reversed(list(zip(matches, history))):
            old = Mux(match, value.as_value(), old)
        old = _register(m, Mux(s2[2], 0, old), "acc_old", True)

        _, vector, _, _, _, _ = s3
        base = acc_shape(Mux(chain, total.as_value(), old))
        for n in range(cfg.cols):
            m.d.sync += total[n].eq(base[n] + vector[n])

        valid4, _, _, last4, addr4, scales4 = s4
        m.d.comb += [ram.w_en.eq(valid4 & ~last4), ram.w_addr.eq(addr4),
                     ram.w_data.eq(total)]
        self._to_requant(m, requant, valid4 & last4, total, scales4, relu)

    def _row_collector(self, m, array, requant, bounds, bound_m, shapes, relu, start, ok,
                       spend):
        """Output-stationary: the array's output rows, with the n-tile's scales, into the
        requantizer; rows past M (the last m-tile's padding) are dropped."""
        cfg = self._config
        loops = _Loops("row", (range(cfg.rows),) + shapes[1:])
        with m.If(start):
            loops.start(m)
        row_bounds = (cfg.rows - 1,) + bounds[1:]
        scales, have_scales, release = self._scales(m)
        last_inner, last_mid, _ = loops.flags(row_bounds)
        real = loops.mid + loops.inner <= bound_m
        take = ~real | (ok & have_scales)
        took = array.c.valid & take
        m.d.comb += [array.c.ready.eq(take), spend.eq(took & real)]
        with m.If(took):
            loops.step(m, row_bounds, cfg.rows, cfg.cols)
        m.d.comb += release.eq(took & last_inner & last_mid)
        self._to_requant(m, requant, _register(m, took & real, "row_valid"),
                         _register(m, array.c.payload, "row_acc", True),
                         _register(m, scales, "row_scales", True), relu)
