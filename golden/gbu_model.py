"""Bit-exact integer model of the Gaussian Blending Unit datapath (DESIGN.md 7.2).

Every value is an integer (``torch.int64`` or Python ``int`` where products exceed 63 bits) in the
formats of a :class:`hw.gbu.config.GBUConfig`; every dropped bit is rounded explicitly with
``cfg.rounding``; every setup output saturates to its format. A hardware implementation is checked
against it output by output: per tile the raw image, final ``T``, ``n_blended``, ``n_contrib``
and per row the setups, empty rows, evaluations and interval-skipped pixels.

Stages (``irss``), per tile with origin ``(X, Y)``; ``f_q`` etc. are fraction bits:

1. Input conversion (to nearest, ties to even, saturating, :func:`golden.fixed.quantize`): mean
   ``(mx, my)`` relative to the tile origin (quantized absolute, then ``X << f_q`` subtracted,
   exact, then saturated to ``coord_format``), conic ``(a, b, c)``, opacity ``o`` (``alpha_format``),
   color (``color_format``); and the Gaussian's row range (:func:`row_range`), outside which
   stage 2 finds every row empty, so that the row setup (``irss``) never spends a cycle there.
2. Row setup, per (Gaussian, row ``r``), ``dy = my - r`` (exact):
   ``x0 = mx + round(b dy / a)`` (one rounded integer quotient, ``x0_format``);
   ``p0 = round(-(a c - b^2) dy^2 / (2 a))`` (``p0_format``);
   ``L = log_table[bitlen(o)]`` bounds ``ln(255 o) + 1/8`` from above; the row is empty when
   ``L`` is undefined (``o < 1/255``) or ``p0 + L < 0``; else ``w = ceil(sqrt(ceil(2 (p0 + L) / a)))``
   in ``x0_format`` units and the interval is ``[ceil(x0 - w), floor(x0 + w)]`` clipped to the
   tile (empty when that is empty). A pixel outside has ``o exp(power) < e^(-1/8)/255`` so
   it is never one the lanes would blend. Then with ``u = lo - x0`` (exact), the start power
   ``P = p0 + round(-a u^2 / 2)`` and first difference ``D = round(-a (2u + 1) / 2)`` in
   ``acc_format`` (saturated).
3. Row shader lane, pixels ``lo .. hi``: use ``P``, then ``P += D; D -= a`` (exact additions;
   equal to ``P_k = P + k D - a k (k - 1) / 2``, which this model evaluates). ``P > 0``: skipped.
   ``n = -P``; ``i = n >> s``, ``s = acc.f - exp_addr_bits + 3``; ``i >= 2**exp_addr_bits``:
   ``e = 0``; else ``e = E[i]`` (+ ``round((E[i+1] - E[i]) (n mod 2**s) / 2**s)`` when
   interpolating). ``alpha = min(alpha_max, round(o e))``; skipped when ``alpha < alpha_min``.
   ``test_T = round(T (1 - alpha))``; if ``test_T < t_min`` the pixel stops, not blended; else
   ``w = round(alpha T)`` (``t_format``), ``C += round(color w)`` (``color_acc_format``,
   saturated) and ``T = test_T``.
4. Output ``C + round(T bg)`` (saturated). A row stops being set up when all its pixels inside
   the image have stopped; a tile when all rows have.

``naive``: stage 2 is replaced by the direct ``power = round(-(a dx^2 + 2 b dx dy + c dy^2) / 2)``
(``acc_format``, saturated) for every pixel of every Gaussian of the list; stages 3-4 equal.
"""

import dataclasses
import math

import numpy as np
import torch

from golden.fixed import quantize
from hw.gbu.config import GBUConfig
from hw.lib.config import SQ


__all__ = ["SKIPPED", "BLENDED", "TERMINATED", "TileResult", "GBUResult", "round_div",
           "quantize_splats", "row_range", "in_row_range", "row_setup", "exp_unit", "shade_tile",
           "render_gbu"]

#: Per (pixel, Gaussian) decisions (:attr:`TileResult.decisions`).
SKIPPED, BLENDED, TERMINATED = 0, 1, 2


def round_div(num, den, rounding):
    """``num / den`` rounded with ``rounding``, for ``den > 0``; works on Python ints, numpy
    object arrays and int64 tensors (floor division and remainder only)."""
    q = num // den
    r2 = (num - q * den) * 2                        # 0 <= r2 < 2 den
    if rounding == "trunc":
        return q
    if rounding == "half_up":
        up = r2 >= den
    elif rounding == "half_away":
        up = (r2 > den) | ((r2 == den) & (num >= 0))
    else:
        up = (r2 > den) | ((r2 == den) & (q % 2 == 1))
    if isinstance(up, torch.Tensor):
        return q + up.to(q.dtype)
    if isinstance(up, np.ndarray):
        return q + up.astype(np.int64).astype(object)
    return q + int(up)


def _scale(num, e, rounding):
    """``round(num * 2**e)``."""
    if e >= 0:
        return num * (1 << e)
    return round_div(num, 1 << -e, rounding)


def _div_scaled(num, den, e, rounding):
    """``round(num * 2**e / den)``, ``den > 0`` elementwise."""
    if e >= 0:
        return round_div(num * (1 << e), den, rounding)
    return round_div(num, den * (1 << -e), rounding)


def _sat(x, fmt):
    if isinstance(x, torch.Tensor):
        return x.clamp(fmt.min_int, fmt.max_int)
    return np.minimum(np.maximum(x, fmt.min_int), fmt.max_int)


def _obj(t):
    """int64 tensor to a numpy object array of Python ints."""
    return np.array(t.tolist(), dtype=object).reshape(tuple(t.shape))


@dataclasses.dataclass(frozen=True)
class TileResult:
    """Outputs of one tile, pixels in row-major order within the tile.

    Attributes
    ----------
    image_raw : (256, 3) int64, ``color_acc_format``
    T_raw : (256,) int64, ``t_format``
    n_blended, n_contrib : (256,) int64
    row_setups : (16,) int64
        (Gaussian, row) setups done while the row was alive: ``irss`` sets up only the rows
        inside the Gaussian's :func:`row_range`, ``naive`` every row.
    row_empty : (16,) int64
        Of those, the ones whose interval was empty (no lane work).
    row_evals : (16,) int64
        Pixels evaluated by the lane of the row (interval lengths; ``16`` per setup in naive).
    row_skipped : (16,) int64
        ``16 * row_setups - row_evals``: pixels the interval spared.
    row_pairs : (16,) int64
        (Gaussian, row) pairs while the row was alive, set up or not: ``16 * row_pairs -
        row_evals`` pixels were spared by the row range and the interval together.
    cycles : int
        :meth:`GBUConfig.tile_cycles` of ``row_evals`` and ``row_setups`` (lanes or row setups,
        whichever is busier).
    decisions : (n, 256) int8 or None
        :data:`SKIPPED` / :data:`BLENDED` / :data:`TERMINATED` per (list position, pixel).
    """
    image_raw: torch.Tensor
    T_raw: torch.Tensor
    n_blended: torch.Tensor
    n_contrib: torch.Tensor
    row_setups: torch.Tensor
    row_empty: torch.Tensor
    row_evals: torch.Tensor
    row_skipped: torch.Tensor
    row_pairs: torch.Tensor
    cycles: int
    decisions: torch.Tensor = None


@dataclasses.dataclass(frozen=True)
class GBUResult:
    """A whole render: image-order outputs and the per-tile results.

    ``image`` (H, W, 3) and ``final_T`` (H, W) are the float64 values of ``image_raw`` and
    ``T_raw``."""
    image: torch.Tensor
    image_raw: torch.Tensor
    final_T: torch.Tensor
    T_raw: torch.Tensor
    n_blended: torch.Tensor
    n_contrib: torch.Tensor
    tiles: list
    evaluations: int
    cycles: int


def quantize_splats(cfg, splats, ids, origin):
    """Stage 1 for the Gaussians ``ids`` of the tile at pixel ``origin = (X, Y)``.

    Returns a dict of int64 tensors: ``mx, my`` (``coord_format``, tile-relative), ``a, b, c``
    (``conic_format``), ``o`` (``alpha_format``), ``color`` (n, 3) (``color_format``) and
    ``rows_above``, ``rows_below`` (:func:`row_range`)."""
    q = cfg.coord_format
    wide = SQ(min(62 - q.f_bits, 40), q.f_bits)
    mean = quantize(splats.means2d[ids].to(torch.float64), wide)
    rel = mean - torch.tensor(origin, dtype=torch.int64) * (1 << q.f_bits)
    rel = rel.clamp(q.min_int, q.max_int)
    conic = quantize(splats.conics[ids].to(torch.float64), cfg.conic_format)
    g = {"mx": rel[:, 0], "my": rel[:, 1], "a": conic[:, 0], "b": conic[:, 1], "c": conic[:, 2],
         "o": quantize(splats.opacities[ids].to(torch.float64), cfg.alpha_format),
         "color": quantize(splats.colors[ids].to(torch.float64), cfg.color_format)}
    g["rows_above"], g["rows_below"] = row_range(cfg, g)
    return g


def row_range(cfg, g):
    """The tile rows a quantized Gaussian can touch, as ``(rows_above, rows_below)``: int64
    tensors (n,) of the rows at the top and at the bottom of the tile that :func:`row_setup`
    finds empty whatever the x-interval; ``rows_above + rows_below >= tile`` when every row is
    empty (then both are ``tile - 1``). ``0, 0`` (every row) is always a valid range.

    Exact integer arithmetic from ``my``, the conic and ``o``. A row is empty when ``a <= 0``,
    ``L = log_table[bitlen(o)]`` is undefined, or ``p0 + L < 0`` with
    ``p0 = sat(round(-k dy^2 2**e / (2 a)))``, ``k = a c - b^2``, ``e = f_p - f_c - 2 f_q``.
    Every rounding mode rounds up by at most 1/2, and saturation keeps ``p0 < -L`` when
    ``-L > p0_format.min_int``; so a row with ``p0 + L >= 0`` has
    ``k dy^2 2**max(e, 0) <= (2 L + 1) a 2**max(-e, 0)``, that is ``|dy| <= d``,
    ``d = isqrt(floor((2 L + 1) a 2**max(-e, 0) / (k 2**max(e, 0))))``, and row ``r`` lies in
    ``[ceil((my - d) / 2**f_q), floor((my + d) / 2**f_q)]``. With ``k <= 0`` (``p0 >= 0``) or a
    ``p0_format`` too narrow to hold ``-L``, every row may be non-empty."""
    fq, fc, fp = cfg.coord_format.f_bits, cfg.conic_format.f_bits, cfg.p0_format.f_bits
    e = fp - fc - 2 * fq
    up, down = max(e, 0), max(-e, 0)
    top = cfg.tile - 1
    table = cfg.log_table
    above, below = [], []
    for my, a, b, c, o in zip(*(g[f].tolist() for f in ("my", "a", "b", "c", "o"))):
        L = table[o.bit_length()]
        k = a * c - b * b
        if a <= 0 or L is None:
            lo, hi = top, 0
        elif k <= 0 or -L <= cfg.p0_format.min_int:
            lo, hi = 0, top
        else:
            d = math.isqrt(((2 * L + 1) * a << down) // (k << up))
            lo = max(0, -((d - my) >> fq))
            hi = min(top, (my + d) >> fq)
        above.append(lo if lo <= hi else top)
        below.append(top - hi if lo <= hi else top)
    return torch.tensor(above, dtype=torch.int64), torch.tensor(below, dtype=torch.int64)


def in_row_range(cfg, g):
    """(n, tile) bool: row ``r`` lies inside the Gaussian's :func:`row_range`."""
    r = torch.arange(cfg.tile)[None, :]
    return (r >= g["rows_above"][:, None]) & (r <= cfg.tile - 1 - g["rows_below"][:, None])


def row_setup(cfg, g):
    """Stage 2 for every (Gaussian, row) of a tile: int64 tensors (n, tile) ``x0, p0, lo, hi``
    (``lo > hi`` for an empty row), ``P``, ``D`` (``acc_format``) and the flag ``empty``."""
    rnd = cfg.rounding
    fq, fc = cfg.coord_format.f_bits, cfg.conic_format.f_bits
    fx, fp, fa = cfg.x0_format.f_bits, cfg.p0_format.f_bits, cfg.acc_format.f_bits
    tile = cfg.tile
    n = len(g["a"])
    mx, my, a, b, c = (_obj(g[k])[:, None] for k in ("mx", "my", "a", "b", "c"))
    rows = np.array([r << fq for r in range(tile)], dtype=object)[None, :]
    dy = my - rows                                          # exact, coord units
    bad = (a <= 0)                                          # degenerate conic: never contributes
    a_safe = np.where(bad, 1, a)
    x0 = _sat(_scale(mx, fx - fq, rnd) + _div_scaled(b * dy, a_safe, fx - fq, rnd),
              cfg.x0_format)
    p0 = _sat(_div_scaled(-(a * c - b * b) * dy * dy, 2 * a_safe, fp - fc - 2 * fq, rnd),
              cfg.p0_format)
    table = cfg.log_table
    L = [table[int(v).bit_length()] for v in g["o"].tolist()]
    no_o = np.array([v is None for v in L])[:, None]
    Lv = np.array([0 if v is None else v for v in L], dtype=object)[:, None]
    s = p0 + Lv
    empty = bad | no_o | (s < 0)
    s = np.where(empty, 0, s)
    w2 = -((-2 * s * (1 << (fc + 2 * fx - fp)) if fc + 2 * fx >= fp else -2 * s) // a_safe)
    w = np.empty(w2.shape, dtype=object)
    for idx, v in np.ndenumerate(w2):
        root = math.isqrt(v)
        w[idx] = root + (root * root < v)
    one = 1 << fx
    lo = -((w - x0) // one)                                 # ceil((x0 - w) / 2**fx)
    hi = (x0 + w) // one
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, tile - 1)
    empty = empty | (lo > hi)
    lo = np.where(empty, 1, lo)
    hi = np.where(empty, 0, hi)
    u = lo * one - x0
    P = _sat(_scale(p0, fa - fp, rnd) + _scale(-a * u * u, fa - fc - 2 * fx - 1, rnd),
             cfg.acc_format)
    D = _sat(_scale(-a * (2 * u + one), fa - fc - fx - 1, rnd), cfg.acc_format)

    def t(x):
        return torch.tensor(np.asarray(x, dtype=object).astype(np.int64).tolist(),
                            dtype=torch.int64).reshape(n, tile)
    return {"x0": t(x0), "p0": t(p0), "lo": t(lo), "hi": t(hi), "P": t(P), "D": t(D),
            "empty": t(empty.astype(np.int64)).bool()}


def exp_unit(cfg, power):
    """Stage 3's exp: raw ``alpha_format`` values of ``exp(power)`` for ``power <= 0`` raw
    ``acc_format`` (int64 tensor)."""
    k = cfg.exp_addr_bits
    s = cfg.acc_format.f_bits - k + 3
    table = torch.tensor(cfg.exp_table, dtype=torch.int64)
    n = (-power).clamp(min=0)
    i = n >> s
    inside = i < (1 << k)
    ic = i.clamp(max=(1 << k) - 1)
    e = table[ic]
    if cfg.exp_interp:
        frac = n - (i << s)
        e = e + round_div((table[ic + 1] - e) * frac, 1 << s, cfg.rounding)
    return torch.where(inside, e, 0)


def _irss_power(cfg, setup):
    """(n, tile, tile) powers (acc raw) and the evaluated mask of the IRSS lanes."""
    x = torch.arange(cfg.tile)
    k = x[None, None, :] - setup["lo"][..., None]
    evaluated = (k >= 0) & (x[None, None, :] <= setup["hi"][..., None])
    k = k.clamp(min=0)
    a_acc = setup["a_acc"][:, None, None]
    power = setup["P"][..., None] + k * setup["D"][..., None] - a_acc * (k * (k - 1) // 2)
    fmt = cfg.acc_format
    if bool(((power < fmt.min_int) | (power > fmt.max_int))[evaluated].any()):
        raise ValueError(f"golden.gbu_model: the power accumulator overflows {fmt}")
    return power, evaluated


def _naive_power(cfg, g):
    fq, fc, fa = cfg.coord_format.f_bits, cfg.conic_format.f_bits, cfg.acc_format.f_bits
    tile = cfg.tile
    cols = np.array([x << fq for x in range(tile)], dtype=object)
    mx, my, a, b, c = (_obj(g[k_]) for k_ in ("mx", "my", "a", "b", "c"))
    dx = mx[:, None, None] - cols[None, None, :]
    dy = my[:, None, None] - cols[None, :, None]
    q = a[:, None, None] * dx * dx + 2 * b[:, None, None] * dx * dy + c[:, None, None] * dy * dy
    power = _sat(_scale(-q, fa - fc - 2 * fq - 1, cfg.rounding), cfg.acc_format)
    n = len(g["a"])
    return torch.tensor(power.astype(np.int64).tolist(), dtype=torch.int64).reshape(
        n, tile, tile)


def _shade_tile(cfg, splats, ids, origin, inside, record):
    tile, rnd = cfg.tile, cfg.rounding
    n = len(ids)
    npix = tile * tile
    fa_, ft, fcol, fC = (cfg.alpha_format.f_bits, cfg.t_format.f_bits, cfg.color_format.f_bits,
                         cfg.color_acc_format.f_bits)
    g = quantize_splats(cfg, splats, ids, origin) if n else None
    if n and cfg.dataflow == "irss":
        setup = row_setup(cfg, g)
        setup["a_acc"] = g["a"] << (cfg.acc_format.f_bits - cfg.conic_format.f_bits)
        power, evaluated = _irss_power(cfg, setup)
        lengths = (setup["hi"] - setup["lo"] + 1).clamp(min=0)
        set_up = in_row_range(cfg, g)
    elif n:
        power = _naive_power(cfg, g)
        evaluated = torch.ones(n, tile, tile, dtype=torch.bool)
        lengths = torch.full((n, tile), tile, dtype=torch.int64)
        set_up = torch.ones(n, tile, dtype=torch.bool)
    if n:
        e = exp_unit(cfg, power)
        alpha = round_div(g["o"][:, None, None] * e, 1 << fa_, rnd).clamp(max=cfg.alpha_max_raw)
        take = evaluated & (power <= 0) & (alpha >= cfg.alpha_min_raw)
        alpha = alpha.reshape(n, npix)
        take = take.reshape(n, npix)

    T = torch.full((npix,), 1 << ft, dtype=torch.int64)
    C = torch.zeros(npix, 3, dtype=torch.int64)
    done = ~inside.clone()
    n_blended = torch.zeros(npix, dtype=torch.int64)
    n_contrib = torch.zeros(npix, dtype=torch.int64)
    row_setups = torch.zeros(tile, dtype=torch.int64)
    row_empty = torch.zeros(tile, dtype=torch.int64)
    row_evals = torch.zeros(tile, dtype=torch.int64)
    row_pairs = torch.zeros(tile, dtype=torch.int64)
    decisions = torch.full((n, npix), TERMINATED, dtype=torch.int8) if record else None
    one_a = 1 << fa_
    for j in range(n):
        if bool(done.all()):
            break
        row_alive = ~done.reshape(tile, tile).all(1)
        row_pairs += row_alive
        setups = row_alive & set_up[j]
        row_setups += setups
        row_empty += setups & (lengths[j] == 0)
        row_evals += torch.where(row_alive, lengths[j], 0)
        live = ~done
        tk = take[j] & live
        test_T = round_div(T * (one_a - alpha[j]), one_a, rnd)
        stop = tk & (test_T < cfg.t_min_raw)
        blend = tk & ~stop
        weight = round_div(alpha[j] * T, one_a, rnd)
        add = round_div(g["color"][j][None, :] * weight[:, None], 1 << (fcol + ft - fC), rnd) \
            if fcol + ft >= fC else g["color"][j][None, :] * weight[:, None] << (fC - fcol - ft)
        C = torch.where(blend[:, None], (C + add).clamp(max=cfg.color_acc_format.max_int), C)
        T = torch.where(blend, test_T, T)
        n_blended += blend
        n_contrib = torch.where(blend, j + 1, n_contrib)
        if record:
            decisions[j] = torch.where(live & ~tk, SKIPPED,
                                       torch.where(blend, BLENDED, TERMINATED)).to(torch.int8)
        done = done | stop
    if record:
        decisions[:, ~inside] = TERMINATED
    bg = torch.tensor(cfg.background_raw, dtype=torch.int64)
    shift = fcol + ft - fC
    bg_term = round_div(T[:, None] * bg[None, :], 1 << shift, rnd) if shift >= 0 else \
        T[:, None] * bg[None, :] << -shift
    image = (C + bg_term).clamp(max=cfg.color_acc_format.max_int)
    row_evals_l = row_evals.tolist()
    return TileResult(image_raw=image, T_raw=T, n_blended=n_blended, n_contrib=n_contrib,
                      row_setups=row_setups, row_empty=row_empty, row_evals=row_evals,
                      row_skipped=tile * row_setups - row_evals, row_pairs=row_pairs,
                      cycles=cfg.tile_cycles(row_evals_l, row_setups.tolist()),
                      decisions=decisions)


def shade_tile(cfg, splats, tiles, t, *, record_decisions=False):
    """Tile ``t`` (row-major in ``tiles.grid``) of ``tiles``
    (:class:`golden.splat_binning.TileLists`) through the GBU model: a :class:`TileResult`."""
    tile = cfg.tile
    gx = tiles.grid[0]
    X, Y = (t % gx) * tile, (t // gx) * tile
    py, px = torch.meshgrid(torch.arange(tile), torch.arange(tile), indexing="ij")
    inside = ((px + X < splats.width) & (py + Y < splats.height)).reshape(-1)
    return _shade_tile(cfg, splats, tiles.tile(t), (X, Y), inside, record_decisions)


def render_gbu(cfg, splats, tiles, *, record_decisions=False, progress=None):
    """Run the GBU model over every tile of ``tiles`` (:class:`golden.splat_binning.TileLists`,
    16x16 tiles) for ``splats`` (:class:`golden.splat_preprocess.Splats2D`).

    ``progress``, if given, wraps the iterable of tile indices (``tqdm.tqdm`` for example).

    Returns
    -------
    GBUResult
    """
    if not isinstance(cfg, GBUConfig):
        raise TypeError(f"render_gbu: cfg must be a GBUConfig, not {type(cfg).__name__}")
    tile = cfg.tile
    gx, gy = tiles.grid
    W, H = splats.width, splats.height
    results = []
    img = torch.zeros(gy * tile, gx * tile, 3, dtype=torch.int64)
    Traw = torch.zeros(gy * tile, gx * tile, dtype=torch.int64)
    nb = torch.zeros_like(Traw)
    nc = torch.zeros_like(Traw)
    for t in (progress or iter)(range(gx * gy)):
        X, Y = (t % gx) * tile, (t // gx) * tile
        r = shade_tile(cfg, splats, tiles, t, record_decisions=record_decisions)
        results.append(r)
        sl = (slice(Y, Y + tile), slice(X, X + tile))
        img[sl] = r.image_raw.reshape(tile, tile, 3)
        Traw[sl] = r.T_raw.reshape(tile, tile)
        nb[sl] = r.n_blended.reshape(tile, tile)
        nc[sl] = r.n_contrib.reshape(tile, tile)
    img, Traw, nb, nc = img[:H, :W], Traw[:H, :W], nb[:H, :W], nc[:H, :W]
    return GBUResult(image=img.to(torch.float64) / (1 << cfg.color_acc_format.f_bits),
                     image_raw=img, final_T=Traw.to(torch.float64) / (1 << cfg.t_format.f_bits),
                     T_raw=Traw, n_blended=nb, n_contrib=nc, tiles=results,
                     evaluations=int(sum(int(r.row_evals.sum()) for r in results)),
                     cycles=sum(r.cycles for r in results))
