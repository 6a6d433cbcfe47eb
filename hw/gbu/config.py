"""Configuration and analytic performance model of the Gaussian Blending Unit (DESIGN.md 7.2).

Standard library and :mod:`hw.lib.config` only (DESIGN.md section 2).

Datapath (one tile of ``tile`` x ``tile`` pixels, its Gaussians in list order), modelled bit for
bit by :mod:`golden.gbu_model`:

* Input conversion: mean relative to the tile origin in ``coord_format``; conic (a, b, c) in
  ``conic_format``; opacity in ``alpha_format``; color in ``color_format``.
* Row setup (IRSS), per (Gaussian, row): ``x0 = mx + (b/a) dy`` in ``x0_format`` and
  ``p0 = -0.5 (c - b^2/a) dy^2`` in ``p0_format`` (each one exact integer quotient rounded with
  ``rounding``); the contributing x-interval from ``p0 + L(o) >= 0.5 a (x - x0)^2`` where ``L(o)``
  is a conservative bound of ``ln(255 o)`` (see :func:`log_bound_table`); the starting power and
  first difference in ``acc_format``.
* Row shader lanes: two additions per pixel (``P += D; D -= a``), exp by a table of
  ``2**exp_addr_bits`` segments over ``[-EXP_RANGE, 0]`` (optionally linearly interpolated),
  ``alpha = min(alpha_max, o e)``, the skip and early-stop tests, ``T`` in ``t_format``, ``C`` in
  ``color_acc_format``.

Thresholds as implemented: ``alpha_min_raw = quantize(1/255, alpha_format)``,
``alpha_max_raw = quantize(0.99, alpha_format)``, ``t_min_raw = quantize(1e-4, t_format)``, each
rounded to nearest (ties to even) like the inputs, so an opacity of exactly 1/255 on a Gaussian's
centre still passes (``alpha_raw >= alpha_min_raw``) as it does in fp64.
"""

import dataclasses
import math
import typing
from fractions import Fraction

from ..lib.config import (ROUNDING_MODES, Config, QFormat, SQ, UQ, check_choice, check_int)


__all__ = ["GBUConfig", "DATAFLOWS", "EXP_RANGE", "ALPHA_MIN", "ALPHA_MAX", "T_MIN",
           "LOG_MARGIN", "quantize_nearest", "log_bound_table"]

#: ``irss``: row setup + incremental row shading; ``naive``: every pixel of every Gaussian of the
#: tile list with the direct 2D formula (ablation baseline).
DATAFLOWS = ("irss", "naive")
#: The exp table covers powers in ``[-EXP_RANGE, 0]``; below, ``e = 0`` (``exp(-8) < 1/255``).
EXP_RANGE = 8
ALPHA_MIN = Fraction(1, 255)
ALPHA_MAX = Fraction(99, 100)
T_MIN = Fraction(1, 10000)
#: Extra power (1/8, i.e. alpha 13% lower) by which the row interval is widened beyond
#: ``ln(255 o)`` so that no pixel that the arithmetic of the lanes would blend is left out.
LOG_MARGIN = Fraction(1, 8)

_OWNER = "GBUConfig"


def quantize_nearest(value, fmt):
    """``value`` (a Fraction or float) as a raw integer of ``fmt``, to nearest, ties to even,
    saturated; exact (rational arithmetic)."""
    v = Fraction(value) * (1 << fmt.f_bits) if fmt.f_bits >= 0 else \
        Fraction(value) / (1 << -fmt.f_bits)
    return max(fmt.min_int, min(fmt.max_int, round(v)))


def log_bound_table(alpha_format, p0_format):
    """Raw ``p0_format`` values ``L[m]``, ``m = 0 .. alpha_format.width``: an upper bound of
    ``ln(255 o)`` (plus :data:`LOG_MARGIN`) for every opacity whose raw value has bit length
    ``m`` (``o < 2**(m - f)``); ``None`` where ``255 o < 1`` for every such opacity (no
    contribution). Hardware: a priority encoder on ``o`` and a constant ROM."""
    table = []
    for m in range(alpha_format.width + 1):
        upper = 2.0 ** (m - alpha_format.f_bits)     # o < upper
        if m == 0 or 255 * upper <= 1:
            table.append(None)
            continue
        bound = math.log(255 * upper) + float(LOG_MARGIN)
        # Round up on a 1/64 grid, then to the format (exact: the grid is coarser).
        table.append(math.ceil(bound * 64) * (1 << p0_format.f_bits) // 64 + 1)
    return tuple(table)


@dataclasses.dataclass(frozen=True)
class GBUConfig(Config):
    """Parameters of the Gaussian Blending Unit.

    Attributes
    ----------
    tile : int
        Tile edge in pixels (16, as inria's BLOCK_X/Y).
    lanes : int
        Row shader lanes, 1..tile; row ``r`` is shaded by lane ``r % lanes``; a lane evaluates one
        (Gaussian, pixel) pair per cycle.
    dataflow : "irss" or "naive"
    coord_format, conic_format, x0_format, p0_format, acc_format : QFormat (signed)
        Tile-relative coordinates (mean and dy); conic coefficients; row setup outputs ``x0``,
        ``p0``; the incremental power accumulator and its first difference.
    alpha_format, color_format, t_format, color_acc_format : QFormat (unsigned)
        Opacity, exp output and alpha; input color and background; transmittance ``T``;
        accumulated color ``C`` and the output image.
    exp_addr_bits : int
        The exp table has ``2**exp_addr_bits`` segments over ``[-8, 0]``.
    exp_interp : bool
        Linear interpolation between table entries.
    bg_r, bg_g, bg_b : int
        Background color, raw integers of ``color_format``.
    rounding : str
        Rounding of every quotient and product that drops bits (:data:`ROUNDING_MODES`).
    max_gaussians : int
        Longest tile list the hardware takes (sets the width of list positions and counts).
    gaussian_fifo_depth : int
        Gaussians the queue of each row setup (IRSS) or lane (naive) holds, so that one with
        light rows runs ahead of one with heavy rows (at least 3, the depth at which the queue
        sustains one transfer per cycle).
    row_setups : int
        Row setups (IRSS), 1..lanes; setup ``g`` serves the lanes ``l`` with
        ``l % row_setups == g``. A setup makes one (Gaussian, row) record per cycle while a lane
        spends an interval's length on one, so one setup can feed several lanes.
    record_fifo_depth : int
        Set-up row records each lane's queue holds (IRSS, at least 3): how far a setup may run
        ahead of the lanes it serves.
    """
    tile: int = 16
    lanes: int = 4
    dataflow: typing.Literal["irss", "naive"] = "irss"
    coord_format: QFormat = SQ(14, 12)
    conic_format: QFormat = SQ(3, 28)
    x0_format: QFormat = SQ(14, 12)
    p0_format: QFormat = SQ(6, 24)
    acc_format: QFormat = SQ(6, 30)
    alpha_format: QFormat = UQ(1, 16)
    color_format: QFormat = UQ(2, 14)
    t_format: QFormat = UQ(1, 24)
    color_acc_format: QFormat = UQ(3, 20)
    exp_addr_bits: int = 8
    exp_interp: bool = True
    bg_r: int = 0
    bg_g: int = 0
    bg_b: int = 0
    rounding: str = "half_up"
    max_gaussians: int = 4095
    gaussian_fifo_depth: int = 16
    row_setups: int = 1
    record_fifo_depth: int = 16

    def __post_init__(self):
        check_int("tile", self.tile, min=16, max=16, owner=_OWNER)
        check_int("lanes", self.lanes, min=1, max=self.tile, owner=_OWNER)
        check_choice("dataflow", self.dataflow, DATAFLOWS, owner=_OWNER)
        check_choice("rounding", self.rounding, ROUNDING_MODES, owner=_OWNER)
        for name in ("coord_format", "conic_format", "x0_format", "p0_format", "acc_format",
                     "alpha_format", "color_format", "t_format", "color_acc_format"):
            fmt = getattr(self, name)
            if not isinstance(fmt, QFormat):
                raise ValueError(f"{_OWNER}.{name} must be a QFormat, not {fmt!r}")
            signed = name in ("coord_format", "conic_format", "x0_format", "p0_format",
                              "acc_format")
            if fmt.signed != signed:
                raise ValueError(f"{_OWNER}.{name}={fmt} must be "
                                 f"{'signed (SQ)' if signed else 'unsigned (UQ)'}")
            if fmt.width > 48:
                raise ValueError(f"{_OWNER}.{name}={fmt} is {fmt.width} bits wide: expected "
                                 f"at most 48")
            if fmt.f_bits < 1:
                raise ValueError(f"{_OWNER}.{name}={fmt} needs at least 1 fraction bit")

        def need_int(name, bits):
            fmt = getattr(self, name)
            if fmt.i_bits < bits:
                raise ValueError(f"{_OWNER}.{name}={fmt} has {fmt.i_bits} integer bits: expected "
                                 f">= {bits}")
        need_int("coord_format", 7)        # +-32 pixels at least (tile-relative)
        need_int("x0_format", self.coord_format.i_bits)
        need_int("conic_format", 3)        # conic <= 1/0.3 after the 0.3 dilation
        need_int("p0_format", 5)           # holds -EXP_RANGE - margin .. ln 255 bounds
        need_int("acc_format", 5)
        need_int("alpha_format", 1)        # holds exp(0) = 1
        need_int("t_format", 1)            # holds T = 1
        need_int("color_acc_format", self.color_format.i_bits)
        if self.acc_format.f_bits < self.conic_format.f_bits + 1:
            raise ValueError(f"{_OWNER}.acc_format={self.acc_format} needs at least "
                             f"conic_format.f_bits + 1 = {self.conic_format.f_bits + 1} fraction "
                             f"bits: the second difference -a and a/2 must be exact in it")
        if self.acc_format.f_bits < self.p0_format.f_bits:
            raise ValueError(f"{_OWNER}.acc_format={self.acc_format} needs at least "
                             f"p0_format.f_bits = {self.p0_format.f_bits} fraction bits")
        check_int("exp_addr_bits", self.exp_addr_bits, min=3, max=16, owner=_OWNER)
        if self.acc_format.f_bits < self.exp_addr_bits - 3:
            raise ValueError(f"{_OWNER}.exp_addr_bits={self.exp_addr_bits} is finer than the "
                             f"accumulator's resolution ({self.acc_format})")
        if not isinstance(self.exp_interp, bool):
            raise ValueError(f"{_OWNER}.exp_interp must be true or false, not {self.exp_interp!r}")
        for name in ("bg_r", "bg_g", "bg_b"):
            check_int(name, getattr(self, name), min=0, max=self.color_format.max_int,
                      owner=_OWNER)
        product = self.color_format.width + self.t_format.width
        if max(product, self.alpha_format.width + self.t_format.width) > 62:
            raise ValueError(f"{_OWNER}: color_format, alpha_format and t_format are too wide: "
                             f"the lane products must stay within 62 bits")
        if self.alpha_min_raw < 1:
            raise ValueError(f"{_OWNER}.alpha_format={self.alpha_format} cannot represent the "
                             f"1/255 threshold")
        if self.t_min_raw < 1:
            raise ValueError(f"{_OWNER}.t_format={self.t_format} cannot represent the 1e-4 "
                             f"early-stop threshold")
        check_int("max_gaussians", self.max_gaussians, min=1, max=(1 << 20) - 1, owner=_OWNER)
        check_int("gaussian_fifo_depth", self.gaussian_fifo_depth, min=3, max=4096, owner=_OWNER)
        check_int("row_setups", self.row_setups, min=1, max=self.lanes, owner=_OWNER)
        check_int("record_fifo_depth", self.record_fifo_depth, min=3, max=4096, owner=_OWNER)

    # Thresholds as implemented ------------------------------------------------------------
    @property
    def alpha_min_raw(self):
        """``1/255`` in ``alpha_format``: a pair is skipped when ``alpha_raw < alpha_min_raw``."""
        return quantize_nearest(ALPHA_MIN, self.alpha_format)

    @property
    def alpha_max_raw(self):
        """``0.99`` in ``alpha_format``: ``alpha_raw = min(alpha_max_raw, ...)``."""
        return quantize_nearest(ALPHA_MAX, self.alpha_format)

    @property
    def t_min_raw(self):
        """``1e-4`` in ``t_format``: a pixel stops when ``test_T_raw < t_min_raw``."""
        return quantize_nearest(T_MIN, self.t_format)

    @property
    def index_width(self):
        """Bits of a list position, a Gaussian count and ``n_contrib`` (``0 .. max_gaussians``)."""
        return self.max_gaussians.bit_length()

    @property
    def slots(self):
        """Rows each lane holds: ``ceil(tile / lanes)`` (lane ``l`` holds rows ``l``,
        ``l + lanes``, ...; slot ``s`` is row ``l + s * lanes``)."""
        return -(-self.tile // self.lanes)

    def setup_lanes(self, setup):
        """Lanes fed by row setup ``setup`` (IRSS), in increasing order."""
        check_int("setup", setup, min=0, max=self.row_setups - 1, owner="setup_lanes")
        return list(range(setup, self.lanes, self.row_setups))

    @property
    def background_raw(self):
        return (self.bg_r, self.bg_g, self.bg_b)

    @property
    def exp_table(self):
        """Raw ``alpha_format`` entries ``exp(-i 8 / 2**exp_addr_bits)``, ``i = 0 ..
        2**exp_addr_bits`` (one more than the segments, for interpolation)."""
        n = 1 << self.exp_addr_bits
        scale = 1 << self.alpha_format.f_bits
        return tuple(min(self.alpha_format.max_int,
                         round(math.exp(-i * EXP_RANGE / n) * scale)) for i in range(n + 1))

    @property
    def log_table(self):
        """See :func:`log_bound_table`."""
        return log_bound_table(self.alpha_format, self.p0_format)

    # Analytic performance model ------------------------------------------------------------
    def irss_tile_cycles(self, row_work):
        """Shading cycles of one tile with IRSS.

        ``row_work[r]`` is the number of (Gaussian, pixel) evaluations of row ``r``: the summed
        lengths of its non-empty contributing intervals while the row is alive. Rows go to lanes
        round robin (row ``r`` to lane ``r % lanes``) and a lane evaluates one pair per cycle, so
        the tile takes the busiest lane's total (setup assumed hidden behind shading)."""
        if len(row_work) != self.tile:
            raise ValueError(f"irss_tile_cycles: expected {self.tile} rows, got {len(row_work)}")
        return max(sum(row_work[r] for r in range(lane, self.tile, self.lanes))
                   for lane in range(self.lanes))

    def naive_tile_cycles(self, n_gaussians):
        """Upper bound of the naive dataflow's cycles for a tile of ``n_gaussians`` (no early
        termination): every pixel of every listed Gaussian, a row of ``tile`` pixels per lane and
        Gaussian, rows round robin over the lanes."""
        check_int("n_gaussians", n_gaussians, min=0, owner="naive_tile_cycles")
        return math.ceil(self.tile / self.lanes) * self.tile * n_gaussians

    def setup_tile_cycles(self, row_setups):
        """Row setup cycles of one tile with IRSS: ``row_setups[r]`` (Gaussian, row) pairs of
        row ``r`` are set up (one per Gaussian while the row is alive), and a row setup takes
        one per cycle of the rows of the lanes it serves, so the tile takes the busiest
        setup's total."""
        if len(row_setups) != self.tile:
            raise ValueError(f"setup_tile_cycles: expected {self.tile} rows, got "
                             f"{len(row_setups)}")
        return max(sum(row_setups[r] for r in range(self.tile)
                       if r % self.lanes in self.setup_lanes(g))
                   for g in range(self.row_setups))

    def tile_cycles(self, row_work, row_setups=None):
        """Cycles of one tile given the per-row lane work, for either dataflow (naive's row work
        is ``tile`` per Gaussian while the row is alive): :meth:`irss_tile_cycles`, or, for
        IRSS with ``row_setups`` given, the larger of it and :meth:`setup_tile_cycles` (lanes
        and row setups work concurrently; whichever is busier sets the pace)."""
        lanes = self.irss_tile_cycles(row_work)
        if row_setups is None or self.dataflow == "naive":
            return lanes
        return max(lanes, self.setup_tile_cycles(row_setups))
