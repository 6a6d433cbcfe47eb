"""Systolic MAC arrays, weight-stationary and output-stationary, of any ``rows`` x ``cols``.

Both arrays are fully registered: every PE is one pipeline stage (operands pass to the next PE
through registers, the multiplier registers its operands and, twice, its product, the
accumulation is registered), so the clock is set by one PE, not by the array size.

Flow control: each array steps as a whole. A step happens in every cycle where the stage in
front of the output :class:`~hw.lib.stream.SkidBuffer` is empty or the buffer takes its item;
the step signal is the clock enable of every register inside, so backpressure freezes the array
exactly, and bubbles (cycles without an input) travel through it like data. The enable depends on
registers only (the skid buffer's ``ready`` and a valid tag), never combinationally on the
consumer's ``ready``.
"""

from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..lib.stream import SkidBuffer
from .config import MULTIPLIER_LATENCY, GemmConfig
from .multiplier import Multiplier


__all__ = ["SystolicArray", "WeightStationaryArray", "OutputStationaryArray"]


def _check_config(owner, config, dataflow=None):
    if not isinstance(config, GemmConfig):
        raise TypeError(f"{owner}.config must be a GemmConfig, not {config!r}")
    if dataflow is not None and config.dataflow != dataflow:
        raise ValueError(f"{owner}.config.dataflow={config.dataflow!r} is not valid: expected "
                         f"{dataflow!r}")
    return config


def _register(m, value, en, name):
    """``value`` one enabled step later."""
    reg = Signal.like(value, name=name)
    with m.If(en):
        m.d.sync += reg.eq(value)
    return reg


def _delay(m, value, steps, en, name):
    """``value`` ``steps`` enabled steps later (a chain of registers; ``value`` itself for 0)."""
    for n in range(steps):
        value = _register(m, value, en, f"{name}_d{n}")
    return value


class _ArrayBase(wiring.Component):
    def __init__(self, config, members):
        self._config = config
        super().__init__(members)

    @property
    def config(self):
        """The :class:`~hw.gemm.config.GemmConfig` the array is built from."""
        return self._config

    @property
    def latency(self):
        """:attr:`GemmConfig.latency <hw.gemm.config.GemmConfig.latency>`:
        ``rows + cols + 3`` cycles."""
        return self._config.latency

    def _output_stage(self, m, out_valid):
        """The output skid buffer and the array's step enable; returns ``(skid, step)``."""
        m.submodules.out = skid = SkidBuffer(self.c.payload.shape())
        wiring.connect(m, skid.o, wiring.flipped(self.c))
        step = Signal()
        m.d.comb += [
            step.eq(~out_valid | skid.i.ready),
            skid.i.valid.eq(out_valid),
        ]
        return skid, step

    def _multiplier(self, m, name):
        cfg = self._config
        mul = Multiplier(a_bits=cfg.act_bits, b_bits=cfg.weight_bits, kind=cfg.multiplier_kind)
        m.submodules[name] = mul
        return mul


class WeightStationaryArray(_ArrayBase):
    """Weight-stationary systolic array: ``C[m, :] = A[m, :] @ W`` for a ``rows`` x ``cols``
    weight tile ``W`` held in the PEs.

    PE ``(k, n)`` holds ``W[k, n]``. Activation ``A[m, k]`` enters row ``k`` from the left
    (rows skewed by one cycle each, inside the array) and passes right; partial sums flow down
    each column and leave at the bottom, where they are deskewed into one vector per cycle.
    Every PE also has a shadow weight register: the next tile shifts into the shadows while the
    current one computes, and a swap flag travelling with the activations switches each PE to
    its shadow exactly when the first activation of the new tile reaches it, so a tile change
    costs no bubble.

    Parameters
    ----------
    config : GemmConfig
        With ``dataflow="ws"``. Activations are ``act_bits`` (int8), weights ``weight_bits``,
        outputs ``acc_bits``, all signed; partial sums inside are
        :attr:`~hw.gemm.config.GemmConfig.psum_bits` wide.

    Interface attributes
    --------------------
    w : In(stream.Signature(ArrayLayout(signed(weight_bits), cols)))
        Weight rows ``W[k, :]`` of the next tile, ``k = 0 .. rows - 1`` in that order, one per
        transfer, into the shadow registers. ``w.ready`` is high while the shadows are neither
        complete (``rows`` rows in, not yet swapped) nor still being swapped in by the array
        (``rows + cols - 1`` steps after the swap vector).
    a : In(stream.Signature(StructLayout({"data": ArrayLayout(signed(act_bits), rows), "swap": 1})))
        Activation vectors ``A[m, :]`` (``data[k]`` = ``A[m, k]``), one per transfer. ``swap=1``
        marks the first vector to use the weight tile last completed on ``w``; such a vector is
        accepted only once that tile is complete (``a.ready`` depends on ``a.payload.swap``).
        Vectors before the first swap after reset use all-zero weights.
    c : Out(stream.Signature(ArrayLayout(signed(acc_bits), cols)))
        ``C[m, :]``, one vector per ``a`` transfer, in order. Without backpressure it is offered
        :attr:`latency` = ``rows + cols + 3`` cycles after its ``a`` transfer; at most one vector
        per cycle in and out.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`~hw.gemm.config.GemmConfig`.
    ValueError
        If ``config.dataflow`` is not ``"ws"``.
    """

    def __init__(self, *, config):
        _check_config("WeightStationaryArray", config, "ws")
        super().__init__(config, self.members(config))

    @staticmethod
    def members(config):
        """The ports of the array built from ``config``, as ``{name: member}``."""
        return {
            "w": In(stream.Signature(data.ArrayLayout(signed(config.weight_bits), config.cols))),
            "a": In(stream.Signature(data.StructLayout({
                "data": data.ArrayLayout(signed(config.act_bits), config.rows),
                "swap": 1,
            }))),
            "c": Out(stream.Signature(data.ArrayLayout(signed(config.acc_bits), config.cols))),
        }

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        rows, cols = cfg.rows, cfg.cols

        # An accepted vector's output reaches the skid buffer rows + cols - 1 PE stages plus the
        # multiplier later (the skid buffer then adds the last cycle of `latency`).
        out_valid = Signal()
        skid, step = self._output_stage(m, out_valid)
        shadow_full = Signal()
        m.d.comb += self.a.ready.eq(step & (~self.a.payload.swap | shadow_full))
        accept = self.a.valid & self.a.ready
        swap_in = Signal()
        m.d.comb += [
            swap_in.eq(accept & self.a.payload.swap),
            out_valid.eq(_delay(m, accept, rows + cols + MULTIPLIER_LATENCY - 1, step, "valid")),
        ]

        shadow = [[Signal(signed(cfg.weight_bits), name=f"shadow_{k}_{n}") for n in range(cols)]
                  for k in range(rows)]
        loaded = Signal(range(rows + 1))
        # Steps until the swap wave has passed the last PE, (rows - 1, cols - 1): the shadows
        # must hold still until then.
        sweeping = Signal(range(rows + cols))
        m.d.comb += [
            shadow_full.eq(loaded == rows),
            self.w.ready.eq(~shadow_full & (sweeping == 0)),
        ]
        with m.If(self.w.valid & self.w.ready):
            # Rows enter at the bottom and move up, so the first row sent ends in row 0.
            m.d.sync += loaded.eq(loaded + 1)
            for k in range(rows):
                m.d.sync += [shadow[k][n].eq(shadow[k + 1][n] if k + 1 < rows
                                             else self.w.payload[n]) for n in range(cols)]
        with m.If(swap_in):
            m.d.sync += [loaded.eq(0), sweeping.eq(rows + cols - 2)]
        with m.Elif(step & (sweeping != 0)):
            m.d.sync += sweeping.eq(sweeping - 1)

        psums = [Const(0, signed(cfg.psum_bits))] * cols
        for k in range(rows):
            act = _delay(m, self.a.payload.data[k], k, step, f"act_{k}")
            swap = _delay(m, swap_in, k, step, f"swap_{k}")
            for n in range(cols):
                mul = self._multiplier(m, f"pe_{k}_{n}")
                m.d.comb += [
                    mul.a.eq(act), mul.b.eq(shadow[k][n]),
                    mul.a_en.eq(step), mul.b_en.eq(step & swap), mul.p_en.eq(step),
                ]
                psum = Signal(signed(cfg.psum_bits), name=f"psum_{k}_{n}")
                with m.If(step):
                    m.d.sync += psum.eq(psums[n] + mul.p)
                psums[n] = psum
                if n + 1 < cols:
                    act = _register(m, act, step, f"act_{k}_{n}")
                    swap = _register(m, swap, step, f"swap_{k}_{n}")

        for n in range(cols):
            m.d.comb += skid.i.payload[n].eq(_delay(m, psums[n], cols - 1 - n, step, f"out_{n}"))
        return m


class OutputStationaryArray(_ArrayBase):
    """Output-stationary systolic array: a ``rows`` x ``cols`` tile ``C = A @ W`` accumulated in
    the PEs over any number K of k-slices.

    Each k-slice brings the column ``A[:, k]`` (entering the rows from the left) and the row
    ``W[k, :]`` (entering the columns from the top), both skewed inside the array so that
    ``A[i, k]`` and ``W[k, j]`` meet in the PE of ``C[i, j]``. When the last slice of a tile
    has been accumulated, each PE copies its sum into an output register, and the output
    registers of each column shift down and out one per cycle while the next tile already
    accumulates.

    Parameters
    ----------
    config : GemmConfig
        With ``dataflow="os"``; accumulators are ``acc_bits`` wide.

    Interface attributes
    --------------------
    i : In(stream.Signature(StructLayout({...})))
        Fields ``"a": ArrayLayout(signed(act_bits), rows)``,
        ``"w": ArrayLayout(signed(weight_bits), cols)``, ``"last": 1``.
        k-slices, ``a[i]`` = ``A[i, k]`` and ``w[j]`` = ``W[k, j]``, ``k = 0 .. K - 1`` in any
        order, one per transfer; ``last=1`` on the final slice of a tile (K >= 1, which may
        differ between tiles). Tiles whose drains would collide are spaced: a ``last`` slice is
        accepted only ``rows`` or more steps after the previous one (``i.ready`` depends on
        ``i.payload.last``), so tiles with K >= ``rows`` stream back to back.
    c : Out(stream.Signature(ArrayLayout(signed(acc_bits), cols)))
        The tile's rows ``C[0, :]``, ``C[1, :]``, ... ``C[rows - 1, :]``, in that order. Without
        backpressure ``C[0, :]`` is offered :attr:`latency` = ``rows + cols + 3`` cycles after
        the ``last`` transfer and the following rows in the next ``rows - 1`` cycles.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`~hw.gemm.config.GemmConfig`.
    ValueError
        If ``config.dataflow`` is not ``"os"``.
    """

    def __init__(self, *, config):
        _check_config("OutputStationaryArray", config, "os")
        super().__init__(config, self.members(config))

    @staticmethod
    def members(config):
        """The ports of the array built from ``config``, as ``{name: member}``."""
        return {
            "i": In(stream.Signature(data.StructLayout({
                "a": data.ArrayLayout(signed(config.act_bits), config.rows),
                "w": data.ArrayLayout(signed(config.weight_bits), config.cols),
                "last": 1,
            }))),
            "c": Out(stream.Signature(data.ArrayLayout(signed(config.acc_bits), config.cols))),
        }

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        rows, cols = cfg.rows, cfg.cols
        payload = self.i.payload

        out_valid = Signal()
        skid, step = self._output_stage(m, out_valid)

        # Steps since the last `last` slice, saturating at `rows`: a tile's rows leave a column
        # in `rows` steps, and its output registers must be free before the next tile fills them.
        since_last = Signal(range(rows + 1), init=rows)
        last_ok = since_last == rows
        m.d.comb += self.i.ready.eq(step & (~payload.last | last_ok))
        accept = self.i.valid & self.i.ready
        with m.If(step):
            with m.If(accept & payload.last):
                m.d.sync += since_last.eq(1)
            with m.Elif(~last_ok):
                m.d.sync += since_last.eq(since_last + 1)
        next_first = Signal(init=1)
        with m.If(accept):
            m.d.sync += next_first.eq(payload.last)
        first_in = accept & next_first
        last_in = accept & payload.last

        # Physical row p holds C[rows - 1 - p, :]: rows finish top first, one step apart, and
        # leave bottom first, so this numbering makes C[0, :] come out first.
        acts, firsts, lasts = [], [], []
        for p in range(rows):
            # A bubble enters as zero activations, whose products leave the sums unchanged.
            lane = Mux(accept, payload.a[rows - 1 - p], 0)
            acts.append(_delay(m, lane, p, step, f"act_{p}"))
            firsts.append(_delay(m, first_in, p, step, f"first_{p}"))
            lasts.append(_delay(m, last_in, p, step, f"last_{p}"))
        weights = [_delay(m, payload.w[j], j, step, f"w_{j}") for j in range(cols)]

        # Drain schedule of column 0 (other columns follow one step later each): `start` is
        # high in the step after the bottom PE captured; row p then takes the register above it
        # for p steps, and the bottom row is valid for `rows` steps (`window[p]` is high for
        # p + 1 steps from `start`).
        start = Signal()
        window = [start]
        for p in range(1, rows):
            window.append(start | _register(m, window[-1], step, f"window_{p}"))

        outs_above = [None] * cols
        bottom = []
        for p in range(rows):
            act, first, last = acts[p], firsts[p], lasts[p]
            shift = window[p - 1] if p > 0 else None
            for j in range(cols):
                mul = self._multiplier(m, f"pe_{p}_{j}")
                m.d.comb += [
                    mul.a.eq(act), mul.b.eq(weights[j]),
                    mul.a_en.eq(step), mul.b_en.eq(step), mul.p_en.eq(step),
                ]
                first_p = _delay(m, first, MULTIPLIER_LATENCY, step, f"first_{p}_{j}_p")
                last_p = _delay(m, last, MULTIPLIER_LATENCY, step, f"last_{p}_{j}_p")
                acc = Signal(signed(cfg.acc_bits), name=f"acc_{p}_{j}")
                total = Mux(first_p, 0, acc) + mul.p
                out = Signal(signed(cfg.acc_bits), name=f"out_{p}_{j}")
                with m.If(step):
                    m.d.sync += acc.eq(total)
                    with m.If(last_p):
                        m.d.sync += out.eq(total)
                    if shift is not None:
                        with m.Elif(shift):
                            m.d.sync += out.eq(outs_above[j])
                    if p == rows - 1 and j == 0:
                        m.d.sync += start.eq(last_p)
                outs_above[j] = out
                if p == rows - 1:
                    bottom.append(out)
                if j + 1 < cols:
                    act = _register(m, act, step, f"act_{p}_{j}")
                    first = _register(m, first, step, f"first_{p}_{j}")
                    last = _register(m, last, step, f"last_{p}_{j}")
                    if shift is not None:
                        shift = _register(m, shift, step, f"shift_{p}_{j}")
                weights[j] = _register(m, weights[j], step, f"w_{p}_{j}")

        m.d.comb += out_valid.eq(_delay(m, window[-1], cols - 1, step, "valid"))
        for j in range(cols):
            m.d.comb += skid.i.payload[j].eq(_delay(m, bottom[j], cols - 1 - j, step, f"out_{j}"))
        return m


class SystolicArray(wiring.Component):
    """A systolic array of either dataflow, chosen by ``config.dataflow``.

    Wraps :class:`WeightStationaryArray` (ports ``w``, ``a``, ``c``) or
    :class:`OutputStationaryArray` (ports ``i``, ``c``) and has exactly its ports, protocol and
    latency; see those classes.

    Parameters
    ----------
    config : GemmConfig

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`~hw.gemm.config.GemmConfig`.
    """

    def __init__(self, *, config):
        self._config = _check_config("SystolicArray", config)
        self._array_cls = (WeightStationaryArray if config.dataflow == "ws"
                           else OutputStationaryArray)
        super().__init__(self._array_cls.members(config))

    @property
    def config(self):
        """The :class:`~hw.gemm.config.GemmConfig` the array is built from."""
        return self._config

    @property
    def latency(self):
        """Cycles from an input to its first output, as :attr:`GemmConfig.latency
        <hw.gemm.config.GemmConfig.latency>`."""
        return self._config.latency

    def elaborate(self, platform):
        m = Module()
        m.submodules.array = array = self._array_cls(config=self._config)
        for name in self.signature.members:
            wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(array, name))
        return m
