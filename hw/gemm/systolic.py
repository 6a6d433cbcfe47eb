"""Systolic MAC arrays, weight-stationary and output-stationary, of any ``rows`` x ``cols``.

Both arrays are fully registered: inputs are registered once on entry, every PE is one pipeline
stage (operands pass to the next PE through registers, the multiplier registers its operands and,
twice, its product, the accumulation is registered), so the clock is set by one PE, not by the
array size.

Flow control: the arrays never stop. A valid bit travels with each input through the pipeline,
and bubbles travel like data. Backpressure is absorbed by an output queue deep enough to hold
everything that can be in flight, and input acceptance is gated by credits counted against that
queue: one credit per output vector the input will produce, returned when the vector leaves.
Nothing inside the array therefore has a clock enable that depends on the consumer (a global
enable fanned out to every DSP and PE register limited an 8x8 int8 array to 127 MHz); the only
enables left are local ones that travel with the data (the weight swap flag) or come straight
from a register (the weight load strobe).
"""

import types

from amaranth.hdl import Const, Module, Mux, ResetSignal, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..lib.component import ConfiguredComponent, check_config
from ..lib.stream import CreditFIFO
from .config import MULTIPLIER_LATENCY, GemmConfig
from .multiplier import Multiplier, dsp_grid


__all__ = ["SystolicArray", "WeightStationaryArray", "OutputStationaryArray"]

#: Cycles the output queue (:class:`~hw.lib.stream.CreditFIFO`) adds between the last PE stage
#: and the ``c`` port.
_QUEUE_LATENCY = 2


def _check_config(owner, config, dataflow=None):
    check_config(owner, config, GemmConfig)
    if dataflow is not None and config.dataflow != dataflow:
        raise ValueError(f"{owner}.config.dataflow={config.dataflow!r} is not valid: expected "
                         f"{dataflow!r}")
    return config


def _register(m, value, name, reset_less=False, *, reset=None):
    """``value`` one cycle later. Data registers whose contents only matter while a valid bit
    says so are ``reset_less``: the reset net then reaches control flip-flops only. With
    ``reset`` (a local copy of the domain reset), the register is cleared by it instead."""
    reg = Signal.like(value, name=name, reset_less=reset_less or reset is not None)
    m.d.sync += reg.eq(value if reset is None else Mux(reset, 0, value))
    return reg


def _delay(m, value, cycles, name, reset_less=False):
    """``value`` ``cycles`` cycles later (a chain of registers; ``value`` itself for 0)."""
    for n in range(cycles):
        value = _register(m, value, f"{name}_d{n}", reset_less)
    return value


def _columns(m, valid_ahead, cols):
    """What each column's output queue needs beside it: ``valid_ahead`` one cycle late, and a
    reset. Returns ``(valids, resets)``.

    The write enables of column ``n``'s queue hang off a register of the column's own, not off
    one register for all columns (which drove the write side of every column, across the die:
    an 8x8 array at 178 MHz); and the queue is emptied by a reset-less copy of the domain's
    reset delayed by ``n + 1`` cycles, not by the domain's reset net, whose route to the far
    columns then limited an 8x8 array to 186-200 MHz. The delays keep the copies apart (Yosys
    merges registers with the same inputs).

    The valid copies are reset-less too and cleared where their column's reset is: a copy may
    show a stale valid in the cycle after a reset, whose write the queue's reset then undoes.
    For that, and for a queue to be empty before anyone reads it, the caller's ``valid_ahead``
    must stay low for ``cols`` cycles after a reset, and the reset must be held for at least 2
    cycles (a :class:`~amaranth.lib.cdc.ResetSynchronizer` holds it for 2 or more): while the
    domain's reset is high, whatever the queues offer is ignored, and from its second cycle
    the first column's queue, whose ``valid`` stands for all, offers nothing."""
    valids, resets = [], []
    column_reset = ResetSignal()
    for n in range(cols):
        column_reset = _register(m, column_reset, f"column_reset_{n}", True)
        valids.append(_register(m, valid_ahead & ~column_reset, f"valid_{n}", True))
        resets.append(column_reset)
    return valids, resets


def _ws_floorplan(rows, cols, grid):
    """DSP sites of the PEs of a ``rows`` x ``cols`` weight-stationary array, ``{(k, n): (row,
    index)}`` in a :func:`~hw.gemm.multiplier.dsp_grid` ``grid``, or ``None`` when ``grid`` is
    ``None`` or too small.

    The four multipliers of a DSP block take four consecutive PE rows of one column, so that
    partial sums pass between neighbours, and the columns of those four rows take consecutive
    blocks of a DSP row, so that activations pass to the next block; further groups of four PE
    rows go to the next DSP row, then beside the first ones. Left to itself, nextpnr scattered
    the PEs of an 8x8 array over the device, with 5 ns routes between neighbours.
    """
    if grid is None:
        return None
    dsp_rows, blocks = grid[0], grid[1] // 4
    groups = -(-rows // 4)
    if cols > blocks or groups > dsp_rows * (blocks // cols):
        return None
    return {(k, n): ((k // 4) % dsp_rows, 4 * ((k // 4) // dsp_rows * cols + n) + k % 4)
            for k in range(rows) for n in range(cols)}


class _ArrayBase(ConfiguredComponent):
    @property
    def latency(self):
        """:attr:`GemmConfig.latency <hw.gemm.config.GemmConfig.latency>`:
        ``rows + cols + 5`` cycles."""
        return self._config.latency

    @property
    def queue_depth(self):
        """Output vectors the output queue holds: enough for one input per cycle with ``c``
        always ready (a credit is usable again ``latency + 2`` cycles after it was spent),
        plus, for ``os``, the ``rows`` vectors a tile claims at once."""
        cfg = self._config
        return cfg.latency + 2 + (cfg.rows if cfg.dataflow == "os" else 0)

    def _output_queue(self, m, lane_shape, valids, lanes, resets=None):
        """The output queue, fed with ``lanes`` (one per column) where ``valids`` (one per
        column, all equal) are high; emptied by ``resets`` (one per column) when given, else by
        the domain's reset.

        Each column has a queue of its own, with its own read control: one queue for the whole
        vector drove the read enables of every column's output register from one LUT, which
        the placer put at their centre, far from the control registers it also feeds (an 8x8
        array at 167 MHz). The copies stay apart through synthesis, as their control registers
        feed back on themselves. All of them hold the same number of items, so the first one's
        ``valid`` stands for all."""
        queues = []
        for n, (valid, lane) in enumerate(zip(valids, lanes)):
            queue = CreditFIFO(lane_shape, depth=self.queue_depth, local_reset=resets is not None)
            m.submodules[f"queue_{n}"] = queue
            if resets is not None:
                m.d.comb += queue.reset.eq(resets[n])
            # Lanes narrower than acc_bits (ws partial sums) are sign-extended after the queue,
            # so that the queue stores only the bits that carry information.
            m.d.comb += [queue.i.valid.eq(valid), queue.i.payload.eq(lane),
                         queue.o.ready.eq(self.c.ready), self.c.payload[n].eq(queue.o.payload)]
            queues.append(queue)
        m.d.comb += self.c.valid.eq(queues[0].o.valid)

    def _credits(self, m, amount):
        """Credits against the output queue, ``amount`` output vectors per spend.

        Returns ``(ok, spend)``: ``ok`` is high while ``amount`` credits are free; the caller
        drives ``spend`` high to take them. Spends and returns (``c`` transfers) are registered
        before they are counted, so that the count hangs off flip-flops, not off ``valid &
        ready`` (that path limited an 8x8 array to 164 MHz). The count is a thermometer code (bit
        ``k``: more than ``k`` credits free), so a spend or a return is a shift, one LUT from the
        neighbouring bits, with no adder or comparator (a binary counter and its compare were
        the critical path near 190 MHz on an ECP5-45F). ``ok`` allows for a spend still in its
        register.
        """
        depth = self.queue_depth
        free = Signal(depth, init=(1 << depth) - 1, name="credits")
        spend = Signal(name="spend")
        spent = _register(m, spend, "spent")
        returned = _register(m, self.c.valid & self.c.ready, "returned")
        free_next = Signal.like(free, name="credits_next")
        with m.If(spent & returned):
            m.d.comb += free_next.eq(free >> (amount - 1))
        with m.Elif(spent):
            m.d.comb += free_next.eq(free >> amount)
        with m.Elif(returned):
            m.d.comb += free_next.eq((free << 1) | 1)
        with m.Else():
            m.d.comb += free_next.eq(free)
        m.d.sync += free.eq(free_next)
        # ``ok`` is itself a flip-flop, loaded with the value the check will have next cycle, so
        # that the ``ready`` it feeds is one LUT away from registers.
        ok = Signal(init=1, name="credits_ok")
        m.d.sync += ok.eq(Mux(spend, free_next[2 * amount - 1], free_next[amount - 1]))
        return ok, spend

    def _ws_front(self, m):
        """The activation side of a weight-stationary engine (ports of
        :meth:`WeightStationaryArray.members`) and its weight shadow registers.

        ``a`` is accepted while a credit is free and, for a swap vector, the shadow tile is
        complete; every input is registered once, so that what fans out into the engine starts
        at a flip-flop (the data registers load every cycle; the valid and swap bits say what
        they hold). Returns a namespace with ``swap_accept`` (this cycle),
        ``valid_in``, ``swap_in``, ``acts_in`` (registered), ``shadow`` (``rows x cols``
        signals) and ``shadow_full``, which the caller drives.
        """
        cfg = self._config
        room, spend = self._credits(m, 1)
        shadow_full = Signal()
        m.d.comb += self.a.ready.eq(room & (~self.a.payload.swap | shadow_full))
        accept = self.a.valid & self.a.ready
        swap_accept = accept & self.a.payload.swap
        m.d.comb += spend.eq(accept)
        return types.SimpleNamespace(
            swap_accept=swap_accept, shadow_full=shadow_full,
            valid_in=_register(m, accept, "valid_in"),
            swap_in=_register(m, swap_accept, "swap_in"),
            acts_in=[_register(m, self.a.payload.data[k], f"act_in_{k}", True)
                     for k in range(cfg.rows)],
            shadow=[[Signal(signed(cfg.weight_bits), name=f"shadow_{k}_{n}", reset_less=True)
                     for n in range(cfg.cols)] for k in range(cfg.rows)])

    def _shift_into_shadows(self, m, shadow, w_fire):
        """Weight rows into the shadow registers. A row is staged in a register and shifted in
        one cycle after its transfer, so that the shift enable of every shadow register is a
        flip-flop, not ``valid & ready``. Rows enter at the bottom and move up, so the first row
        sent ends in row 0."""
        rows, cols = self._config.rows, self._config.cols
        w_stage = _register(m, self.w.payload, "w_stage", True)
        w_load = _register(m, w_fire, "w_load")
        with m.If(w_load):
            for k in range(rows):
                m.d.sync += [shadow[k][n].eq(shadow[k + 1][n] if k + 1 < rows else w_stage[n])
                             for n in range(cols)]

    def _multiplier(self, m, name, b_reset=None, site=None):
        cfg = self._config
        mul = Multiplier(a_bits=cfg.act_bits, b_bits=cfg.weight_bits, kind=cfg.multiplier_kind,
                         b_reset=b_reset, site=site)
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
        (``rows + cols - 2`` cycles after the swap vector's transfer).
    a : In(stream.Signature(StructLayout({"data": ArrayLayout(signed(act_bits), rows), "swap": 1})))
        Activation vectors ``A[m, :]`` (``data[k]`` = ``A[m, k]``), one per transfer. ``swap=1``
        marks the first vector to use the weight tile last completed on ``w``; such a vector is
        accepted only once that tile is complete (``a.ready`` depends on ``a.payload.swap``).
        ``a.ready`` is also low while the output queue has no room for one more result.
        Vectors before the first swap after reset use all-zero weights.
    c : Out(stream.Signature(ArrayLayout(signed(acc_bits), cols)))
        ``C[m, :]``, one vector per ``a`` transfer, in order. Without backpressure it is offered
        :attr:`latency` = ``rows + cols + 5`` cycles after its ``a`` transfer; at most one vector
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

        front = self._ws_front(m)
        swap_accept, shadow_full = front.swap_accept, front.shadow_full
        valid_in, swap_in, acts_in, shadow = (front.valid_in, front.swap_in, front.acts_in,
                                              front.shadow)
        # Rows in the shadows as a thermometer code (bit i: more than i rows), so that whether
        # they will be complete next cycle is one LUT from `w.valid`, `w_ready` and two bits.
        loaded = Signal(rows, name="loaded")
        # Cycles until the swap wave has passed the last PE, (rows - 1, cols - 1): the shadows
        # must hold still until then; `swept_soon` is `sweeping <= 1`.
        sweeping = Signal(range(rows + cols))
        swept_soon = Signal(init=1, name="swept_soon")
        # `shadow_full` and `w.ready` are flip-flops loaded with the values the checks on
        # `loaded` and `sweeping` will have next cycle: the handshakes are one LUT from
        # registers, and no counter feeds its own enable through a far-away `valid`. A swap
        # restarts the counters from its registered copy `swap_in`, a cycle late, and reaches
        # the two flags through one gate only (through the counters, the path from the
        # activation's valid limited an 8x8 array to 170 MHz); no row can be taken in between,
        # as the shadows are full when a swap is accepted. The loop from `w_ready` back to
        # itself through the row count is a single LUT6 (through a binary count and its
        # compare, it limited an 8x8 array to 173 MHz).
        w_ready = Signal(init=1, name="w_ready")
        m.d.comb += self.w.ready.eq(w_ready)
        w_fire = self.w.valid & w_ready
        kept_loaded = Mux(swap_in, 0, loaded)
        kept_sweeping = Mux(swap_in, rows + cols - 2, sweeping)
        sweeping_next = Signal.like(sweeping, name="sweeping_next")
        m.d.comb += sweeping_next.eq(Mux(kept_sweeping != 0, kept_sweeping - 1, 0))
        full_next = Mux(w_fire, 1 if rows == 1 else kept_loaded[rows - 2],
                        kept_loaded[rows - 1])
        swept_next = Mux(swap_in, rows + cols - 2 <= 1, swept_soon)
        m.d.sync += [
            loaded.eq(Mux(w_fire, (kept_loaded << 1) | 1, kept_loaded)),
            sweeping.eq(sweeping_next),
            swept_soon.eq(sweeping_next <= 1),
            shadow_full.eq(full_next & ~swap_accept),
        ]
        # At a swap the shadows are full, so `full_next` holds `w_ready` low, except in a 1x1
        # array, which has no sweep: its shadow is free again right after the swap.
        if rows + cols == 2:
            m.d.sync += w_ready.eq(swap_accept | ~full_next)
        else:
            m.d.sync += w_ready.eq(~full_next & swept_next)
        self._shift_into_shadows(m, shadow, w_fire)

        # Row k's swap flags: `swaps[j]` is `swap_in` j cycles late, the swap of the activation
        # that PE (k, j - k) sees now.
        #
        # A swap must not reach the clock enables of the DSPs: nextpnr places at most four
        # distinct clock enables in a block of four MULT18X18D, so with a swap net per PE no
        # legal placement exists (its placer never ends), and with one per anti-diagonal of PEs
        # few blocks are legal, and it scattered the PEs of one row or column over the whole
        # device (an 8x8 array at 174 MHz, limited by 5 ns routes). With DSP multipliers,
        # PE (k, n) therefore keeps its weight in a fabric register, loaded from the shadow one
        # cycle before the first activation of the new tile reaches the PE (its swap one stage
        # early), and the DSP's weight register loads that register at every clock edge. PE
        # (0, 0) has no earlier stage: it keeps the swap on its DSP's enable.
        #
        # Only the weights that PEs use must be zero after reset; they and the swap flags of a
        # row are reset by a chain of reset-less flip-flops, one per row, row k reset k + 1
        # cycles late (well before a swap can reach it, `rows` weight loads after reset), and
        # every other data register is reset-less, so that the global reset net, which
        # reached every register of the array in 5 ns, holds only the control flip-flops at
        # the array's edges. The row resets also keep the swap flags of different rows apart
        # (PE (k, n) and PE (k + 1, n - 1) see the same swap): Yosys would merge them into one
        # flag per anti-diagonal, each driving PEs of every row.
        fabric_weights = cfg.multiplier_kind == "dsp"
        sites = _ws_floorplan(rows, cols, dsp_grid(platform) if fabric_weights else None)
        row_reset = ResetSignal()
        psums = [Const(0, signed(cfg.psum_bits))] * cols
        for k in range(rows):
            row_reset = _register(m, row_reset, f"weight_reset_{k}", True)
            act = _delay(m, acts_in[k], k, f"act_{k}", True)
            swaps = [swap_in]
            for j in range(k + cols - 1):
                swaps.append(_register(m, swaps[-1], f"swap_{k}_{j}", reset=row_reset))
            for n in range(cols):
                site = sites and sites[k, n]
                if fabric_weights and k + n > 0:
                    weight = Signal(signed(cfg.weight_bits), name=f"weight_{k}_{n}",
                                    reset_less=True)
                    with m.If(row_reset):
                        m.d.sync += weight.eq(0)
                    with m.Elif(swaps[k + n - 1]):
                        m.d.sync += weight.eq(shadow[k][n])
                    mul = self._multiplier(m, f"pe_{k}_{n}", b_reset=Const(0), site=site)
                    m.d.comb += [mul.b.eq(weight), mul.b_en.eq(1)]
                else:
                    mul = self._multiplier(m, f"pe_{k}_{n}", b_reset=row_reset, site=site)
                    m.d.comb += [mul.b.eq(shadow[k][n]), mul.b_en.eq(swaps[k + n])]
                m.d.comb += [mul.a.eq(act), mul.a_en.eq(1), mul.p_en.eq(1)]
                psum = _register(m, psums[n] + mul.p, f"psum_{k}_{n}", True)
                psums[n] = psum
                if n + 1 < cols:
                    act = _register(m, act, f"act_{k}_{n}", True)

        # An input accepted in the cycle after a reset reaches `valid_ahead` rows + cols + 2
        # cycles later.
        valid_ahead = _delay(m, valid_in, rows + cols + MULTIPLIER_LATENCY - 2, "valid")
        lanes = [_delay(m, psums[n], cols - 1 - n, f"out_{n}", True) for n in range(cols)]
        valids, resets = _columns(m, valid_ahead, cols)
        self._output_queue(m, signed(cfg.psum_bits), valids, lanes, resets)
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
        accepted only ``rows`` or more cycles after the previous one, and only while the output
        queue has room for the tile's ``rows`` results (``i.ready`` depends on
        ``i.payload.last``), so tiles with K >= ``rows`` stream back to back.
    c : Out(stream.Signature(ArrayLayout(signed(acc_bits), cols)))
        The tile's rows ``C[0, :]``, ``C[1, :]``, ... ``C[rows - 1, :]``, in that order. Without
        backpressure ``C[0, :]`` is offered :attr:`latency` = ``rows + cols + 5`` cycles after
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

        # Cycles since the last `last` slice, saturating at `rows`: a tile's rows leave a column
        # in `rows` cycles, and its output registers must be free before the next tile fills
        # them. A tile spends its `rows` credits at once, on its `last` slice.
        room, spend = self._credits(m, rows)
        since_last = Signal(range(rows + 1), init=rows)
        m.d.comb += self.i.ready.eq(~payload.last | ((since_last == rows) & room))
        accept = self.i.valid & self.i.ready
        last_accept = accept & payload.last
        m.d.comb += spend.eq(last_accept)
        with m.If(last_accept):
            m.d.sync += since_last.eq(1)
        with m.Elif(since_last != rows):
            m.d.sync += since_last.eq(since_last + 1)
        next_first = Signal(init=1)
        with m.If(accept):
            m.d.sync += next_first.eq(payload.last)

        # Inputs registered once on entry. A bubble enters as zero activations, whose products
        # leave the sums unchanged.
        first_in = _register(m, accept & next_first, "first_in")
        last_in = _register(m, last_accept, "last_in")
        weights = [_register(m, payload.w[j], f"w_in_{j}") for j in range(cols)]

        # Physical row p holds C[rows - 1 - p, :]: rows finish top first, one cycle apart, and
        # leave bottom first, so this numbering makes C[0, :] come out first.
        acts, firsts, lasts = [], [], []
        for p in range(rows):
            lane = _register(m, Mux(accept, payload.a[rows - 1 - p], 0), f"act_in_{p}")
            acts.append(_delay(m, lane, p, f"act_{p}"))
            firsts.append(_delay(m, first_in, p, f"first_{p}"))
            lasts.append(_delay(m, last_in, p, f"last_{p}"))
        weights = [_delay(m, weights[j], j, f"w_{j}") for j in range(cols)]

        # Drain schedule of column 0 (other columns follow one cycle later each): `start` is
        # high in the cycle after the bottom PE captured; row p then takes the register above it
        # for p cycles, and the bottom row is valid for `rows` cycles (`window[p]` is high for
        # p + 1 cycles from `start`).
        start = Signal()
        window = [start]
        for p in range(1, rows):
            window.append(start | _register(m, window[-1], f"window_{p}"))

        outs_above = [None] * cols
        bottom = []
        for p in range(rows):
            act, first, last = acts[p], firsts[p], lasts[p]
            shift = window[p - 1] if p > 0 else None
            for j in range(cols):
                mul = self._multiplier(m, f"pe_{p}_{j}")
                m.d.comb += [
                    mul.a.eq(act), mul.b.eq(weights[j]),
                    mul.a_en.eq(1), mul.b_en.eq(1), mul.p_en.eq(1),
                ]
                first_p = _delay(m, first, MULTIPLIER_LATENCY, f"first_{p}_{j}_p")
                last_p = _delay(m, last, MULTIPLIER_LATENCY, f"last_{p}_{j}_p")
                acc = Signal(signed(cfg.acc_bits), name=f"acc_{p}_{j}")
                total = Mux(first_p, 0, acc) + mul.p
                out = Signal(signed(cfg.acc_bits), name=f"out_{p}_{j}")
                m.d.sync += acc.eq(total)
                with m.If(last_p):
                    m.d.sync += out.eq(total)
                if shift is not None:
                    with m.Elif(shift):
                        m.d.sync += out.eq(outs_above[j])
                if p == rows - 1 and j == 0:
                    start_ahead = last_p
                    m.d.sync += start.eq(last_p)
                outs_above[j] = out
                if p == rows - 1:
                    bottom.append(out)
                if j + 1 < cols:
                    act = _register(m, act, f"act_{p}_{j}")
                    first = _register(m, first, f"first_{p}_{j}")
                    last = _register(m, last, f"last_{p}_{j}")
                    if shift is not None:
                        shift = _register(m, shift, f"shift_{p}_{j}")
                weights[j] = _register(m, weights[j], f"w_{p}_{j}")

        # window[-1] one cycle early (window[p] is start | window[p - 1], one cycle late); an
        # input accepted in the cycle after a reset reaches it rows + 3 cycles later.
        window_ahead = start_ahead | window[-2] if rows > 1 else start_ahead
        valid_ahead = _delay(m, window_ahead, cols - 1, "valid")
        lanes = [_delay(m, bottom[j], cols - 1 - j, f"out_{j}") for j in range(cols)]
        valids, resets = _columns(m, valid_ahead, cols)
        self._output_queue(m, signed(cfg.acc_bits), valids, lanes, resets)
        return m


class SystolicArray(ConfiguredComponent):
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
        _check_config("SystolicArray", config)
        self._array_cls = (WeightStationaryArray if config.dataflow == "ws"
                           else OutputStationaryArray)
        super().__init__(config, self._array_cls.members(config))

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
