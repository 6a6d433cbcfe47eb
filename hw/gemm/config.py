"""Configuration and analytic performance model of the tensor (GEMM) engines.

Standard library only (DESIGN.md section 2): ``golden/``, ``sw/`` and ``bench/`` read it without
pulling in gateware.
"""

import dataclasses
import math
import typing

from ..lib.config import Config, check_choice, check_int


__all__ = ["GemmConfig", "DATAFLOWS", "ARRAYS", "REQUANT_ROUNDINGS", "SHIFT_BITS", "N_BITS",
           "MULTIPLIERS", "WEIGHT_BITS", "MULTIPLIER_LATENCY", "REQUANT_DSP_BITS",
           "REQUANT_CHUNK_BITS", "ENGINE_FEED_STAGES", "ENGINE_ACC_STAGES",
           "ENGINE_QUEUE_LATENCY", "weight_range", "required_acc_bits", "tree_levels"]


#: ``ws``: weight-stationary (weights held in the PEs, partial sums flow down the columns);
#: ``os``: output-stationary (accumulators held in the PEs, operands flow through).
DATAFLOWS = ("ws", "os")

#: ``systolic``: the systolic array of ``dataflow``; ``dot-product``: the multiplier-adder-tree
#: engine (:class:`hw.gemm.dot_product.DotProductEngine`), weight-stationary only.
ARRAYS = ("systolic", "dot-product")

#: ``dsp``: one registered MULT18X18D per PE on ECP5; ``lut``: shift/add/mux logic (2- and 4-bit
#: weights only); ``auto``: ``dsp`` for 8-bit weights, ``lut`` for narrower ones.
MULTIPLIERS = ("dsp", "lut", "auto")

#: Rounding of the engine's requantizer (:func:`golden.gemm.requantize`): to nearest, ties away
#: from zero or to even.
REQUANT_ROUNDINGS = ("half_away", "half_even")

#: Width of the per-channel requantization shift (0..62).
SHIFT_BITS = 6

#: Width of the engine command's N field.
N_BITS = 16

#: Supported weight widths: int8, and int4/int2 (W4A8, W2A8).
WEIGHT_BITS = (8, 4, 2)

#: Clock cycles through every PE multiplier: operands registered, product registered, and
#: registered once more in the fabric (nextpnr places the DSP rows far from the adders they feed,
#: and a DSP output routed straight into an adder limited an 8x8 array to 137 MHz). The same for
#: both multiplier kinds, so that the array's timing does not depend on the kind. (A fabric
#: register in front of the operands as well, latency 4, stalled nextpnr's analytical placer on
#: every array: see the closing note of stop 9.)
MULTIPLIER_LATENCY = 3

#: Widest signed operand of one DSP multiplier: the requantizer multiplies the top
#: ``REQUANT_DSP_BITS`` bits of an accumulator on a DSP, the bits below on LUT multipliers,
#: ``REQUANT_CHUNK_BITS`` (unsigned) each.
REQUANT_DSP_BITS = 18
REQUANT_CHUNK_BITS = 3

#: Tensor engine pipeline (:class:`hw.gemm.engine.TensorEngine`), in cycles: from an operand
#: vector's start in the feeder to its write into the feeder's queue (the operand buffer's read
#: and its output register); from an array output's transfer to the requantizer (``ws``: the
#: accumulator buffer's read and output register, the forwarding of recent sums, the sum;
#: ``os``: one register); and through each queue (feeder's, weights', output's).
ENGINE_FEED_STAGES = 2
ENGINE_ACC_STAGES = {"ws": 4, "os": 1}
ENGINE_QUEUE_LATENCY = 2

_OWNER = "GemmConfig"
_MAX_DIM = 64
_MAX_ACC_BITS = 64


def tree_levels(terms):
    """Levels of a binary adder tree summing ``terms`` values: ``ceil(log2(terms))``."""
    return (terms - 1).bit_length()


def weight_range(bits):
    """``(min, max)`` of a signed ``bits``-bit weight."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def required_acc_bits(k, *, act_bits=8, weight_bits=8):
    """Width of a signed accumulator that holds any sum of ``k`` products exactly.

    The extreme products of a signed ``act_bits`` activation and a signed ``weight_bits`` weight
    are ``(-2**(a-1)) * (-2**(w-1))`` (positive) and ``-2**(a-1) * (2**(w-1) - 1)`` (negative);
    ``k`` of them must fit, so this is the smallest ``n`` with
    ``k * 2**(a+w-2) <= 2**(n-1) - 1``.
    """
    a_min, _ = weight_range(act_bits)
    w_min, w_max = weight_range(weight_bits)
    largest = k * a_min * w_min
    smallest = k * min(a_min * w_max, -a_min * w_min - w_min)   # a_min * w_max vs a_max * w_min
    bits = 1
    while largest > (1 << (bits - 1)) - 1 or smallest < -(1 << (bits - 1)):
        bits += 1
    return bits


@dataclasses.dataclass(frozen=True)
class GemmConfig(Config):
    """A tensor engine: a ``rows`` x ``cols`` systolic array and the buffers of its tiled engine.

    Parameters
    ----------
    rows, cols : int
        Array size, 1..64 each (any rectangle). Weight-stationary: ``rows`` is the reduction (K)
        depth of one weight tile and ``cols`` its output channels (N). Output-stationary: ``rows``
        output rows (M) times ``cols`` output columns (N) per tile.
    dataflow : {"ws", "os"}
        See :data:`DATAFLOWS`.
    array : {"systolic", "dot-product"}
        See :data:`ARRAYS`: the array of the tiled engine, and the one the cycle model
        (:attr:`latency`, :meth:`tile_interval`, :meth:`array_cycles`) describes.
        ``dot-product`` needs ``dataflow="ws"``.
    act_bits : int
        Activation width; 8 (int8) is the only one supported for now.
    weight_bits : int
        Weight width, one of :data:`WEIGHT_BITS` (signed: -128..127, -8..7, -2..1).
    max_k : int
        Largest reduction depth K the accumulators must hold exactly (the tiled engine sums
        K-tiles into accumulators of ``acc_bits``), 1..2**24.
    acc_bits : int
        Signed accumulator and output width. At least :func:`required_acc_bits` of ``max_k``
        (28 for the default ``max_k=4096`` at W8A8), at most 64. The default 32 holds W8A8 sums
        up to K = 131071.
    multiplier : {"dsp", "lut", "auto"}
        See :data:`MULTIPLIERS`; ``lut`` needs ``weight_bits`` of 4 or 2.
    a_buffer_depth, w_buffer_depth, acc_buffer_depth : int
        Entries (one array-wide vector each) of the tiled engine's activation, weight and
        accumulator buffers, 1..2**20. A GEMM on the engine needs ``M <= acc_buffer_depth``
        and ``M * ceil(K / rows) <= a_buffer_depth``; the weight buffer is a queue.
    rounding : {"half_away", "half_even"}
        Tie rounding of the engine's int32 -> int8 requantization.
    scale_bits : int
        Width of the engine's signed per-channel requantization multiplier, 2..18 (one DSP
        operand).

    Raises
    ------
    ValueError
        For any parameter out of range, naming it, its value and the allowed values.
    """
    rows: int = 8
    cols: int = 8
    dataflow: typing.Literal[DATAFLOWS] = "ws"
    array: typing.Literal[ARRAYS] = "systolic"
    act_bits: int = 8
    weight_bits: int = 8
    max_k: int = 4096
    acc_bits: int = 32
    multiplier: typing.Literal[MULTIPLIERS] = "auto"
    a_buffer_depth: int = 1024
    w_buffer_depth: int = 1024
    acc_buffer_depth: int = 512
    rounding: typing.Literal[REQUANT_ROUNDINGS] = "half_away"
    scale_bits: int = 16

    def __post_init__(self):
        check_int("rows", self.rows, min=1, max=_MAX_DIM, owner=_OWNER)
        check_int("cols", self.cols, min=1, max=_MAX_DIM, owner=_OWNER)
        check_choice("dataflow", self.dataflow, DATAFLOWS, owner=_OWNER)
        check_choice("array", self.array, ARRAYS, owner=_OWNER)
        if self.array == "dot-product" and self.dataflow != "ws":
            raise ValueError(f"{_OWNER}.dataflow={self.dataflow!r} is not valid with "
                             f"array='dot-product': the dot-product engine is weight-stationary, "
                             f"expected 'ws'")
        check_int("act_bits", self.act_bits, owner=_OWNER)
        check_choice("act_bits", self.act_bits, (8,), owner=_OWNER)
        check_int("weight_bits", self.weight_bits, owner=_OWNER)
        check_choice("weight_bits", self.weight_bits, WEIGHT_BITS, owner=_OWNER)
        check_int("max_k", self.max_k, min=1, max=1 << 24, owner=_OWNER)
        check_int("acc_bits", self.acc_bits, owner=_OWNER)
        needed = required_acc_bits(self.max_k, act_bits=self.act_bits,
                                   weight_bits=self.weight_bits)
        if not needed <= self.acc_bits <= _MAX_ACC_BITS:
            raise ValueError(f"{_OWNER}.acc_bits={self.acc_bits} is out of range: expected "
                             f"{needed}..{_MAX_ACC_BITS} (sums of max_k={self.max_k} "
                             f"W{self.weight_bits}A{self.act_bits} products need {needed} bits)")
        check_choice("multiplier", self.multiplier, MULTIPLIERS, owner=_OWNER)
        if self.multiplier == "lut" and self.weight_bits not in (2, 4):
            raise ValueError(f"{_OWNER}.multiplier='lut' needs weight_bits of 4 or 2, not "
                             f"{self.weight_bits}: use 'dsp' or 'auto' for 8-bit weights")
        for name in ("a_buffer_depth", "w_buffer_depth", "acc_buffer_depth"):
            check_int(name, getattr(self, name), min=1, max=1 << 20, owner=_OWNER)
        check_choice("rounding", self.rounding, REQUANT_ROUNDINGS, owner=_OWNER)
        check_int("scale_bits", self.scale_bits, min=2, max=REQUANT_DSP_BITS, owner=_OWNER)

    @property
    def multiplier_kind(self):
        """The multiplier the PEs use, ``"dsp"`` or ``"lut"`` (``auto`` resolved)."""
        if self.multiplier != "auto":
            return self.multiplier
        return "dsp" if self.weight_bits == 8 else "lut"

    @property
    def product_bits(self):
        """Width of one signed product."""
        return self.act_bits + self.weight_bits

    @property
    def psum_bits(self):
        """Width of the partial sums flowing down a weight-stationary column: enough for
        ``rows`` products, never more than ``acc_bits`` (two's complement sums that wrap in
        between are still exact when the final sum fits)."""
        return min(self.acc_bits, required_acc_bits(self.rows, act_bits=self.act_bits,
                                                    weight_bits=self.weight_bits))

    @property
    def peak_macs_per_cycle(self):
        """Multiply-accumulates per clock cycle with every PE busy."""
        return self.rows * self.cols

    @property
    def latency(self):
        """Cycles from an input transfer to the first cycle its result is offered by the
        :attr:`array`. Systolic: ``rows + cols + MULTIPLIER_LATENCY + 2``, from an activation
        vector to its output vector (``ws``), from the last k-slice of a tile to the tile's first
        output row (``os``); the 2 are the input register and the output queue's second cycle
        (the queue absorbs backpressure so that the array itself never stalls). Dot-product:
        ``MULTIPLIER_LATENCY + ceil(log2(rows)) + 3``, the same registers around the
        multipliers and one per adder-tree level."""
        if self.array == "dot-product":
            return MULTIPLIER_LATENCY + tree_levels(self.rows) + 3
        return self.rows + self.cols + MULTIPLIER_LATENCY + 2

    def tile_interval(self, depth):
        """Cycles between the starts of consecutive tiles of the :attr:`array` with no stalls.

        Systolic weight-stationary, ``depth`` = M activation vectors per weight tile: a new
        tile of weights can enter the PEs' shadow registers only after the previous swap has
        swept the array (``rows + cols - 1`` cycles) and takes ``rows`` cycles to shift in, so
        ``max(M, 2 * rows + cols - 1)``. Dot-product: the shadows are free again the cycle after
        a swap, so ``max(M, rows + 1)``. Output-stationary, ``depth`` = K slices per tile: the
        drain of ``rows`` results per column overlaps the next tile when ``K >= rows``, so
        ``max(K, rows)``.
        """
        check_int("depth", depth, min=1, owner=f"{_OWNER}.tile_interval")
        if self.dataflow == "os":
            return max(depth, self.rows)
        if self.array == "dot-product":
            return max(depth, self.rows + 1)
        return max(depth, 2 * self.rows + self.cols - 1)

    def tiles(self, m, k, n):
        """Number of array tiles of an (M, K, N) GEMM: weight tiles ``ceil(K/rows) *
        ceil(N/cols)`` for ``ws``, output tiles ``ceil(M/rows) * ceil(N/cols)`` for ``os``."""
        for name, value in (("m", m), ("k", k), ("n", n)):
            check_int(name, value, min=1, owner=f"{_OWNER}.tiles")
        outer = k if self.dataflow == "ws" else m
        return math.ceil(outer / self.rows) * math.ceil(n / self.cols)

    def array_cycles(self, m, k, n):
        """Clock cycles of ``C = A @ W`` (A: M x K, W: K x N) on the bare :attr:`array`.

        Counted from the first input transfer to the last output transfer, inclusive, with inputs
        always valid and outputs always ready; partial results across K tiles (``ws``) are summed
        outside the array. ``T`` = :meth:`tiles`, ``I`` = :meth:`tile_interval`, and:

        - ``ws``: ``rows`` (first weight tile) + ``(T - 1) * I(M)`` + ``M`` (steady state of the
          last tile) + ``latency`` (fill/drain);
        - ``os``: ``(T - 1) * I(K)`` + ``K`` + ``latency`` + ``rows - 1`` (the last tile's rows
          leave one per cycle).
        """
        tiles = self.tiles(m, k, n)
        if self.dataflow == "ws":
            return self.rows + (tiles - 1) * self.tile_interval(m) + m + self.latency
        return (tiles - 1) * self.tile_interval(k) + k + self.latency + self.rows - 1

    def utilization(self, m, k, n):
        """Useful MACs over ``peak_macs_per_cycle * array_cycles`` for an (M, K, N) GEMM."""
        return m * k * n / (self.peak_macs_per_cycle * self.array_cycles(m, k, n))

    @property
    def requant_chunks(self):
        """LUT multipliers per requantizer lane: the accumulator bits below its DSP part,
        :data:`REQUANT_CHUNK_BITS` each."""
        return math.ceil(max(0, self.acc_bits - REQUANT_DSP_BITS) / REQUANT_CHUNK_BITS)

    @property
    def requant_latency(self):
        """Cycles through the engine's requantizer (:class:`hw.gemm.requant.ChannelRequantizer`):
        the multipliers, one per level of the tree summing the DSP's and the
        :attr:`requant_chunks` LUT multipliers' products, then quotient, rounding and
        saturation."""
        return MULTIPLIER_LATENCY + tree_levels(1 + self.requant_chunks) + 3

    def engine_cycles(self, m, k, n):
        """Clock cycles of one GEMM on the tiled engine (:class:`hw.gemm.engine.TensorEngine`),
        from its command transfer to its last output transfer, inclusive, with every stream
        always valid/ready and the weight stream starting no later than the command.

        With the command transferred in cycle 0, the array takes its first operand in cycle
        ``F``: after the command register, :data:`ENGINE_FEED_STAGES` and the feeder's queue
        (``F = 5``), and weight-stationary, once the first weight tile has passed the weight
        queue into the shadow registers (``F = max(5, rows + 2)``). Its last operand follows
        ``(T - 1) * I + D - 1`` cycles later (``T`` = :meth:`tiles`, ``I`` =
        :meth:`tile_interval` of ``D``, ``D`` = M for ``ws``, K for ``os``); the last output
        leaves the array :attr:`latency` cycles after that (``os``: plus ``(M - 1) % rows``, the
        last real row of the last tile), then :data:`ENGINE_ACC_STAGES`,
        :attr:`requant_latency` and the output queue's :data:`ENGINE_QUEUE_LATENCY`.
        """
        ws = self.dataflow == "ws"
        feed = 1 + ENGINE_FEED_STAGES + ENGINE_QUEUE_LATENCY
        first = max(feed, self.rows + ENGINE_QUEUE_LATENCY) if ws else feed
        depth = m if ws else k
        last_in = first + (self.tiles(m, k, n) - 1) * self.tile_interval(depth) + depth - 1
        last_out = last_in + self.latency + (0 if ws else (m - 1) % self.rows)
        return (last_out + ENGINE_ACC_STAGES[self.dataflow] + self.requant_latency
                + ENGINE_QUEUE_LATENCY + 1)

    def engine_utilization(self, m, k, n):
        """Useful MACs over ``peak_macs_per_cycle * engine_cycles`` for an (M, K, N) GEMM."""
        return m * k * n / (self.peak_macs_per_cycle * self.engine_cycles(m, k, n))
