"""Multiplier-adder-tree dot-product engine: a weight-stationary alternative to the systolic
array with a latency that grows with ``log2(rows)`` instead of ``rows + cols``.

``cols`` dot-product units each multiply one activation vector by one column of a stationary
weight tile, ``rows`` multipliers side by side, and sum the products in a pipelined binary adder
tree. Every multiplier of the engine sees the same activation vector in the same cycle, so there
is no skew to build up and no deskew at the output, and a new weight tile is switched in
everywhere at once.

Adder tree: a register after every level (:data:`LEVELS_PER_STAGE`), chosen by fmax. An 8x8
int8 engine with DSP multipliers on a ULX3S-45F (speed 6, 200 MHz requested, through
``python -m hw.build``): one level per register, 1,592 LUT4, 3,062 FF, 64 DSP, latency 9, and
183 / 192 MHz (nextpnr seeds 1 / 2), limited by the credit counter and the output queue, not by
the tree; two levels per register, 2,286 LUT4, 2,517 FF, latency 8, and 147 MHz, limited by
the two-level adders (6.8 ns: Yosys merges the two levels into LUTs before one carry chain).
One level per stage costs one cycle and ~550 FF, and here also takes ~700 fewer LUT4.

Flow control is the systolic array's (:class:`~hw.gemm.systolic.WeightStationaryArray`): the
datapath never stops, an output queue absorbs backpressure and input acceptance is gated by
credits counted against it.
"""

import math

from amaranth.hdl import Module, Mux, ResetSignal, Signal, signed

from .config import MULTIPLIER_LATENCY
from .systolic import (_QUEUE_LATENCY, WeightStationaryArray, _ArrayBase, _check_config,
                       _delay, _register)


__all__ = ["DotProductEngine", "LEVELS_PER_STAGE", "tree_levels"]

#: Adder-tree levels between two pipeline registers.
LEVELS_PER_STAGE = 1


def tree_levels(terms):
    """Levels of a binary adder tree summing ``terms`` values: ``ceil(log2(terms))``."""
    return (terms - 1).bit_length()


def _adder_tree(m, terms, width, levels_per_stage, name):
    """The sum of ``terms``, a pipelined binary adder tree; registered after every
    ``levels_per_stage`` levels and after the last one.

    Level ``l`` sums are ``width(l)`` bits wide, signed; sums that overflow a level wrap, which
    leaves the final sum exact modulo ``2**width(levels)``. An odd term out passes to the next
    level beside the sums (through a register where the level has one).
    """
    levels = tree_levels(len(terms))
    for level in range(1, levels + 1):
        domain = "sync" if level % levels_per_stage == 0 or level == levels else "comb"
        shape = signed(width(level))
        nodes = []
        for n in range(0, len(terms), 2):
            node = Signal(shape, name=f"{name}_{level}_{n // 2}", reset_less=True)
            m.d[domain] += node.eq(sum(terms[n:n + 2]))
            nodes.append(node)
        terms = nodes
    return terms[0]


class DotProductEngine(_ArrayBase):
    """Weight-stationary dot-product engine: ``C[m, :] = A[m, :] @ W`` for a ``rows`` x ``cols``
    weight tile ``W``, computed by ``cols`` multiplier-adder trees.

    Unit ``n`` holds column ``W[:, n]`` in ``rows`` multipliers (:class:`~hw.gemm.multiplier.
    Multiplier`, DSP or LUT by ``config.multiplier``), all fed the activation vector ``A[m, :]``
    in the same cycle; a binary adder tree of ``ceil(log2(rows))`` levels, registered after every
    :data:`LEVELS_PER_STAGE` levels, sums the products. Every multiplier also has a shadow weight
    register: the next tile shifts into the shadows while the current one computes, and a swap
    flag travelling with the activations copies every shadow into its multiplier at once, in
    the cycle the first activation vector of the new tile is loaded, so a tile change costs no
    bubble.

    Ports and handshakes are exactly those of
    :class:`~hw.gemm.systolic.WeightStationaryArray` (a drop-in alternative); only
    :attr:`latency` and the weight-load window differ.

    Parameters
    ----------
    config : GemmConfig
        With ``dataflow="ws"``. Activations are ``act_bits`` (int8), weights ``weight_bits``,
        outputs ``acc_bits``, all signed; the adder trees grow by one bit per level up to
        :attr:`~hw.gemm.config.GemmConfig.psum_bits` and wrap like the array's partial sums.

    Interface attributes
    --------------------
    w : In(stream.Signature(ArrayLayout(signed(weight_bits), cols)))
        Weight rows ``W[k, :]`` of the next tile, ``k = 0 .. rows - 1`` in that order, one per
        transfer, into the shadow registers. ``w.ready`` is high while the shadows are not
        complete (``rows`` rows in, not yet swapped); it rises again the cycle after the swap
        vector's transfer.
    a : In(stream.Signature(StructLayout({"data": ArrayLayout(signed(act_bits), rows), "swap": 1})))
        Activation vectors ``A[m, :]`` (``data[k]`` = ``A[m, k]``), one per transfer. ``swap=1``
        marks the first vector to use the weight tile last completed on ``w``; such a vector is
        accepted only once that tile is complete (``a.ready`` depends on ``a.payload.swap``).
        ``a.ready`` is also low while the output queue has no room for one more result.
        Vectors before the first swap after reset use all-zero weights.
    c : Out(stream.Signature(ArrayLayout(signed(acc_bits), cols)))
        ``C[m, :]``, one vector per ``a`` transfer, in order. Without backpressure it is offered
        :attr:`latency` cycles after its ``a`` transfer; at most one vector per cycle in and out.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`~hw.gemm.config.GemmConfig`.
    ValueError
        If ``config.dataflow`` is not ``"ws"``.
    """

    members = staticmethod(WeightStationaryArray.members)

    def __init__(self, *, config):
        _check_config("DotProductEngine", config, "ws")
        super().__init__(config, self.members(config))

    @property
    def tree_stages(self):
        """Pipeline registers in each adder tree: ``ceil(ceil(log2(rows)) / LEVELS_PER_STAGE)``."""
        return math.ceil(tree_levels(self._config.rows) / LEVELS_PER_STAGE)

    @property
    def latency(self):
        """Cycles from an ``a`` transfer to its ``c`` vector with no backpressure: the input
        register, the multiplier (:data:`~hw.gemm.config.MULTIPLIER_LATENCY`), the adder tree
        (:attr:`tree_stages`) and the output queue's 2, so ``6 + tree_stages``."""
        return 1 + MULTIPLIER_LATENCY + self.tree_stages + _QUEUE_LATENCY

    @property
    def queue_depth(self):
        """Output vectors the output queue holds: ``latency + 2``, enough for one input per
        cycle with ``c`` always ready (a credit is usable again ``latency + 2`` cycles after it
        was spent)."""
        return self.latency + 2

    def tile_interval(self, depth):
        """Cycles between the starts of consecutive weight tiles with no stalls, ``depth`` = M
        activation vectors per tile: the next tile's ``rows`` weight rows shift into the shadows
        from the cycle after the previous swap, so ``max(M, rows + 1)``."""
        return max(depth, self._config.rows + 1)

    def array_cycles(self, m, k, n):
        """Clock cycles of ``C = A @ W`` (A: M x K, W: K x N), counted like
        :meth:`GemmConfig.array_cycles <hw.gemm.config.GemmConfig.array_cycles>` (first input
        transfer to last output transfer, inclusive, no stalls): ``rows`` (first weight tile) +
        ``(T - 1) * tile_interval(M)`` + ``M`` + :attr:`latency`, ``T`` =
        :meth:`GemmConfig.tiles <hw.gemm.config.GemmConfig.tiles>`."""
        tiles = self._config.tiles(m, k, n)
        return self._config.rows + (tiles - 1) * self.tile_interval(m) + m + self.latency

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        rows, cols = cfg.rows, cfg.cols

        front = self._ws_front(m)
        swap_accept, shadow_full = front.swap_accept, front.shadow_full
        valid_in, swap_in, acts_in, shadow = (front.valid_in, front.swap_in, front.acts_in,
                                              front.shadow)
        # The shadows are copied into the multipliers in one cycle, so unlike the systolic
        # array's they are free again at once: no sweep to wait for.
        w_ready = Signal(init=1, name="w_ready")
        m.d.comb += self.w.ready.eq(w_ready)
        w_fire = self.w.valid & w_ready
        # The handshake flags are flip-flops loaded with next cycle's values. The count of rows
        # taken is cleared by the registered swap, so that it and the comparisons on it do not
        # hang off `a.ready` (the credit flag, whose path to a counter limited an 8x8 engine to
        # 188 MHz), and both outcomes of a row transfer are compared from registers, so that
        # `w_fire` (an input's valid) only selects between them (through the counter's adder,
        # it limited a 16x16 engine to 139 MHz). The swap reaches each flag through one gate.
        # A row may be taken in the cycle of the clear.
        loaded = Signal(range(rows + 1))
        kept = Mux(swap_in, 0, loaded)
        full_next = Mux(w_fire, kept == rows - 1, kept == rows)
        m.d.sync += [
            loaded.eq(kept + w_fire),
            shadow_full.eq(full_next & ~swap_accept),
            w_ready.eq(~full_next | swap_accept),
        ]
        # A row taken in the cycle after a swap shifts in one cycle after the swap has copied
        # the shadows out.
        self._shift_into_shadows(m, shadow, w_fire)

        # As in the systolic array: the multipliers' weight registers are reset by a chain of
        # reset-less flip-flops, row k k + 1 cycles late (a swap reaches them rows + 2 cycles
        # after reset at the earliest), not by one reset net spanning the engine.
        row_reset = ResetSignal()
        products = [[] for _ in range(cols)]
        for k in range(rows):
            row_reset = _register(m, row_reset, f"dsp_reset_{k}", True)
            for n in range(cols):
                mul = self._multiplier(m, f"mul_{k}_{n}", b_reset=row_reset)
                m.d.comb += [
                    mul.a.eq(acts_in[k]), mul.b.eq(shadow[k][n]),
                    mul.a_en.eq(1), mul.b_en.eq(swap_in), mul.p_en.eq(1),
                ]
                products[n].append(mul.p)

        def width(level):
            return min(cfg.psum_bits, cfg.product_bits + level)

        sums = [_adder_tree(m, products[n], width, LEVELS_PER_STAGE, f"sum_{n}")
                for n in range(cols)]
        out_valid = _delay(m, valid_in, MULTIPLIER_LATENCY + self.tree_stages, "valid")
        self._output_queue(m, signed(width(tree_levels(rows))), [out_valid] * cols, sums)
        return m
