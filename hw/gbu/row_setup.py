"""Row setup of intra-row sequential shading (DESIGN.md 7.2): per (Gaussian, row), the
contributing pixel interval of the row and the lane's starting power and first difference.

The arithmetic is that of :func:`golden.gbu_model.row_setup`, bit for bit, for any
:class:`~hw.gbu.config.GBUConfig` (``f_q``, ``f_c``, ``f_x``, ``f_p``, ``f_a`` are the fraction
bits of the coordinate, conic, ``x0``, ``p0`` and accumulator formats):

1. ``dy = my - (row << f_q)``; a degenerate conic (``a <= 0``) divides by ``a = 1`` and is empty.
2. ``x0 = sat(round(mx) + round(b dy / a))`` and ``p0 = sat(round((b^2 - a c) dy^2 / 2a))``, by
   two pipelined dividers (:class:`~hw.lib.divider.Divider`). A divider computes only the
   quotient bits that can survive the saturation (``x0``: ``|q| < 2**x0.width``, since
   ``|round(mx)| <= 2**(x0.width - 1)``; ``p0``: ``|q| < 2**p0.width``) and flags the rest.
3. ``s = p0 + L[bitlen(o)]``; empty when ``L`` is undefined or ``s < 0``; else
   ``w2 = ceil(2 s 2**k / a)`` (``k = f_c + 2 f_x - f_p``; the model omits the scale when
   ``k < 0``) and ``w = ceil(sqrt(w2))`` (:class:`~hw.lib.isqrt.SquareRoot`). Any
   ``w >= 2**B``, ``2**B >= 2**(x0.width - 1) + 16 2**f_x``, reaches past both tile edges from
   every ``x0``, so ``w2`` is computed below ``2**(2B)`` and clamped above.
4. ``lo = max(ceil((x0 - w) / 2**f_x), 0)``, ``hi = min(floor((x0 + w) / 2**f_x), 15)``; empty
   when ``lo > hi``, then ``lo, hi = 1, 0``.
5. ``u = lo 2**f_x - x0``; ``P = sat(p0 2**(f_a - f_p) + round(-a u^2 / 2))``,
   ``D = sat(round(-a (2u + 1) / 2))`` in ``acc_format`` (with the real ``a``, as the model).

Worst-case widths (default config in brackets): ``dy`` coord + 1 [27]; ``a c - b^2``
2 conic + 1 [63]; ``dy^2`` 2 (coord + 1) [54]; the ``p0`` numerator their sum [117] over a
divisor of conic + ``max(0, 2 f_q + f_c - f_p)`` bits [59]; ``u`` ``max(x0, f_x + 5) + 1``
[27]; ``a u^2`` conic + 2 u [85]. Products are cut into 18x18 partial products on registered
DSPs (:class:`~hw.gemm.multiplier.Multiplier`) summed by a registered adder tree.

The datapath never stalls. Inputs are admitted against credits counted on the output queue
(a :class:`~hw.lib.stream.StreamFIFO` deep enough for everything in flight), and the fields
that only pass through wait in a second queue instead of thousands of pipeline flip-flops; for
the same reason the long delays of wide intermediate values (``a``, ``x0``, ``p0``, ...) go
through block RAM (see ``_Schedule``). The queues are block RAM read without the output
register (about 6 ns from the clock to the data on an ECP5), so a
:class:`~hw.lib.stream.PointerBuffer` takes their output before anything decides on it; its
reader's decision (which lane queue has room) moves pointers, not the record's enables.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..gemm.multiplier import Multiplier
from ..lib.block_ram import RegisteredRAM
from ..lib.component import ConfiguredComponent, check_config
from ..lib.config import SQ, check_int
from ..lib.divider import Divider, round_up
from ..lib.fixed import fixed_shape, requantize
from ..lib.isqrt import SquareRoot
from ..lib.stream import PointerBuffer, StreamFIFO
from .config import GBUConfig


__all__ = ["RowSetup", "row_setup_in_layout", "row_setup_out_layout"]

#: Bits of a tile row or pixel index, and of ``lo``/``hi`` (0..15).
_INDEX_BITS = 4
#: Operand bits per partial product: 17 unsigned bits fit an 18-bit signed DSP port.
_CHUNK = 17
#: Cycles from a write into the output queues to the output on empty queues: the
#: :class:`~hw.lib.stream.StreamFIFO` (2) and the :class:`~hw.lib.stream.PointerBuffer` (1).
_QUEUE_LATENCY = 3
#: A delay of at least this many register bits and cycles goes through block RAM instead
#: (:class:`_Schedule`); a DP16KD holds 18 bits of 512 cycles.
_RAM_BITS = 360
_RAM_CYCLES = 12
#: Address bits of a block RAM delay line: delays up to ``2**_RAM_ADDR_BITS`` cycles.
_RAM_ADDR_BITS = 9


def _check_config(config):
    return check_config("RowSetup", config, GBUConfig)


def _passed_fields(config, tag_width):
    """Fields carried unchanged from input to output."""
    return {
        "o": fixed_shape(config.alpha_format),
        "color": data.ArrayLayout(fixed_shape(config.color_format), 3),
        "row": unsigned(_INDEX_BITS),
        "tag": unsigned(tag_width),
    }


def _result_fields(config):
    """Fields the datapath computes."""
    acc = fixed_shape(config.acc_format)
    return {"lo": unsigned(_INDEX_BITS + 1), "hi": unsigned(_INDEX_BITS + 1),
            "empty": unsigned(1), "P": acc, "D": acc}


def _check_layout_args(config, tag_width):
    _check_config(config)
    check_int("tag_width", tag_width, min=1, owner="RowSetup")


def row_setup_in_layout(config, tag_width=8):
    """Payload of :attr:`RowSetup.i`: one (Gaussian, row) in the raw formats of ``config``."""
    _check_layout_args(config, tag_width)
    coord, conic = fixed_shape(config.coord_format), fixed_shape(config.conic_format)
    return data.StructLayout({"mx": coord, "my": coord, "a": conic, "b": conic, "c": conic,
                              **_passed_fields(config, tag_width)})


def row_setup_out_layout(config, tag_width=8):
    """Payload of :attr:`RowSetup.o`: the setup of one (Gaussian, row)."""
    _check_layout_args(config, tag_width)
    return data.StructLayout({**_result_fields(config),
                              "a_acc": fixed_shape(config.acc_format),
                              **_passed_fields(config, tag_width)})


def _as_signed(value):
    """``value`` as a signed value of the same numeric value."""
    return value if value.shape().signed else Cat(value, Const(0, 1)).as_signed()


def _format(value, f_bits):
    """The signed :class:`QFormat` whose raw integers are exactly ``value``'s bits."""
    return SQ(len(value) - f_bits, f_bits)


class _Schedule:
    """Values of the (Gaussian, row) in flight, each tagged with the pipeline cycle in which it
    is valid (cycle 0: the input register). :meth:`at` delays a value to a later cycle: through
    registers shared by every reader, or, for a long wide delay (at least :data:`_RAM_BITS`
    register bits and :data:`_RAM_CYCLES` cycles), through a block RAM written every cycle at a
    free-running address and read back that many cycles later (the datapath never stalls).
    Valid bits are only ever delayed through registers, which reset."""

    def __init__(self, m):
        self._m = m
        self._chains = {}
        self._rams = 0
        self._count = Signal(_RAM_ADDR_BITS, name="delay_count")
        m.d.sync += self._count.eq(self._count + 1)

    def put(self, name, value, cycle, *, ram=True):
        """Record ``value`` (a signal valid in ``cycle``); ``ram=False`` keeps its delays in
        registers."""
        self._chains[name] = (ram, {cycle: value})
        return value

    def stage(self, name, value, cycle):
        """Register ``value`` (computed from values of ``cycle - 1``) as ``name`` of
        ``cycle``."""
        reg = Signal(value.shape(), name=name, reset_less=True)
        self._m.d.sync += reg.eq(value)
        return self.put(name, reg, cycle)

    def at(self, name, cycle):
        ram, known = self._chains[name]
        if cycle in known:
            return known[cycle]
        earlier = [c for c in known if c < cycle]
        if not earlier:
            raise ValueError(f"{name} is valid from cycle {min(known)}, not {cycle}")
        first = max(earlier)
        value = known[first]
        gap = cycle - first
        if ram and _RAM_CYCLES <= gap < 1 << _RAM_ADDR_BITS and gap * len(value) >= _RAM_BITS:
            known[cycle] = self._ram_delay(name, value, gap)
            return known[cycle]
        for c in range(first + 1, cycle + 1):
            reg = Signal.like(value, name=f"{name}_c{c}")
            self._m.d.sync += reg.eq(value)
            known[c] = value = reg
        return value

    def _ram_delay(self, name, value, gap):
        """``value`` ``gap`` cycles later through a :class:`~hw.lib.block_ram.RegisteredRAM`:
        the word written at count ``n`` is read when the count is ``n + gap - latency``."""
        ram = RegisteredRAM(width=len(value), depth=1 << _RAM_ADDR_BITS)
        self._m.submodules[f"delay_{name}_{self._rams}"] = ram
        self._rams += 1
        back = gap - ram.latency
        out = Signal(value.shape(), name=f"{name}_ram{gap}")
        self._m.d.comb += [
            ram.w_en.eq(1), ram.w_addr.eq(self._count), ram.w_data.eq(value),
            ram.r_en.eq(1), ram.r_addr.eq(self._count - back),
            out.eq(ram.r_data),
        ]
        return out


def _multiply(m, x, y, name):
    """Exact ``x * y`` from 18x18 partial products on registered multipliers and a registered
    adder tree. Returns ``(product signal, latency)``."""
    def chunks(v):
        # Unsigned 17-bit slices, the top one keeping v's sign: v = sum chunk << (17 n).
        pieces = []
        for start in range(0, len(v), _CHUNK):
            piece = v[start:start + _CHUNK]
            top = start + _CHUNK >= len(v)
            pieces.append(piece.as_signed() if top and v.shape().signed else _as_signed(piece))
        return pieces

    shape = signed(len(x) + len(y)) if x.shape().signed or y.shape().signed else \
        unsigned(len(x) + len(y))
    width = shape.width
    terms = []
    latency = 0
    for i, xc in enumerate(chunks(x)):
        for j, yc in enumerate(chunks(y)):
            mul = Multiplier(a_bits=max(2, len(xc)), b_bits=max(2, len(yc)))
            m.submodules[f"{name}_mul_{i}_{j}"] = mul
            m.d.comb += [mul.a.eq(xc), mul.b.eq(yc), mul.a_en.eq(1), mul.b_en.eq(1),
                         mul.p_en.eq(1)]
            terms.append(mul.p.shift_left(_CHUNK * (i + j)))
            latency = mul.latency
    level = 0
    while len(terms) > 1:
        # Sums wrap at the product's width: modulo 2**width the total is still exact.
        pairs = [terms[n:n + 2] for n in range(0, len(terms), 2)]
        terms = []
        for n, pair in enumerate(pairs):
            reg = Signal(width, name=f"{name}_sum_{level}_{n}", reset_less=True)
            m.d.sync += reg.eq(sum(pair))
            terms.append(reg)
        level += 1
        latency += 1
    product = Signal(shape, name=name)
    m.d.comb += product.eq(terms[0])
    return product, latency


class RowSetup(ConfiguredComponent):
    """Per-(Gaussian, row) setup of intra-row sequential shading, bit-exact with
    :func:`golden.gbu_model.row_setup` (the arithmetic is in the module docstring).

    Fully pipelined: one (Gaussian, row) per cycle while ``o`` is ready, in order, with a fixed
    :attr:`latency`.

    Parameters
    ----------
    config : GBUConfig
        Formats and rounding mode.
    tag_width : int
        Width of the opaque ``tag`` passed through.
    stages_per_register : int
        Divider and square-root steps between pipeline registers (fewer registers, lower fmax).

    Interface attributes
    --------------------
    i : In(stream.Signature(row_setup_in_layout(config, tag_width)))
        ``mx``, ``my``: the mean relative to the tile origin, raw ``coord_format``; ``a``,
        ``b``, ``c``: the conic, raw ``conic_format``; ``o``: opacity, raw ``alpha_format``;
        ``color``: three raw ``color_format``; ``row``: the tile row ``r`` (0..15); ``tag``:
        anything, passed through. ``i.ready`` depends on a register only.
    o : Out(stream.Signature(row_setup_out_layout(config, tag_width)))
        ``lo``, ``hi``: the pixel interval of the row, ``lo = 1, hi = 0`` and ``empty = 1``
        when no pixel contributes; ``P``: the power at ``lo``, ``D``: its first difference,
        ``a_acc = a << (f_a - f_c)``: the second difference's magnitude, all raw
        ``acc_format``; ``o``, ``color``, ``row``, ``tag`` from the input. ``o.valid`` and
        ``o.payload`` depend on registers only.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`~hw.gbu.config.GBUConfig`.
    ValueError
        If ``tag_width`` or ``stages_per_register`` is out of range.
    """

    def __init__(self, *, config, tag_width=8, stages_per_register=1):
        _check_config(config)
        self._tag_width = check_int("tag_width", tag_width, min=1, owner="RowSetup")
        self._stages = check_int("stages_per_register", stages_per_register, min=1,
                                 owner="RowSetup")
        super().__init__(config, {
            "i": In(stream.Signature(row_setup_in_layout(config, tag_width))),
            "o": Out(stream.Signature(row_setup_out_layout(config, tag_width))),
        })
        # Built here rather than in elaborate() because the latency is the datapath's depth.
        self._accept = Signal()
        self._datapath = Module()
        self._result, self._valid, self._depth = self._build_datapath(
            self._datapath, self.i.payload, self._accept)


    @property
    def tag_width(self):
        """Width of the ``tag`` field."""
        return self._tag_width

    @property
    def latency(self):
        """Cycles from an input transfer to the output becoming valid, with the output queue
        empty."""
        return self._depth + 1 + _QUEUE_LATENCY

    @property
    def queue_depth(self):
        """Items the output queues hold: all that can be in flight at one input per cycle."""
        return self.latency + 2

    def elaborate(self, platform):
        m = Module()
        depth = self.queue_depth
        cfg = self._config
        passed_fields = _passed_fields(cfg, self._tag_width)
        m.submodules.results = results = StreamFIFO(data.StructLayout(_result_fields(cfg)),
                                                    depth=depth)
        # ``a`` too, for ``a_acc``.
        m.submodules.passed = passed = StreamFIFO(data.StructLayout(
            {"a": fixed_shape(cfg.conic_format), **passed_fields}), depth=depth)

        # Credits: inputs admitted but not yet delivered never exceed the queues' depth, so the
        # queues never refuse an item and the datapath needs no enable. ``i.ready`` is decided a
        # cycle ahead, counting on an input in that cycle, so that only flip-flops decide it; at
        # one input per cycle ``latency`` are in flight, below ``depth - 1``.
        in_flight = Signal(range(depth + 1))
        accept = self._accept
        m.d.comb += accept.eq(self.i.valid & self.i.ready)
        m.submodules.out_register = out_register = PointerBuffer(self.o.payload.shape())
        wiring.connect(m, out_register.o, wiring.flipped(self.o))
        deliver = self.o.valid & self.o.ready
        m.d.sync += [in_flight.eq(in_flight + accept - deliver),
                     self.i.ready.eq(in_flight < depth - 1)]

        m.d.comb += passed.i.valid.eq(accept)
        m.d.comb += [getattr(passed.i.payload, k).eq(getattr(self.i.payload, k))
                     for k in ("a", *passed_fields)]

        m.submodules.datapath = self._datapath
        m.d.comb += [results.i.valid.eq(self._valid), results.i.payload.eq(self._result)]

        joined = results.o.valid & passed.o.valid
        take = joined & out_register.i.ready
        out = out_register.i.payload
        m.d.comb += [
            out_register.i.valid.eq(joined),
            results.o.ready.eq(take),
            passed.o.ready.eq(take),
            out.a_acc.eq(requantize(passed.o.payload.a, cfg.conic_format, cfg.acc_format)),
        ]
        m.d.comb += [getattr(out, k).eq(getattr(results.o.payload, k))
                     for k in _result_fields(cfg)]
        m.d.comb += [getattr(out, k).eq(getattr(passed.o.payload, k)) for k in passed_fields]
        return m

    def _build_datapath(self, m, payload, accept):
        """Build the datapath into ``m``; returns the result payload, its valid bit and the
        number of its last cycle."""
        cfg = self._config
        rnd = cfg.rounding
        fq, fc = cfg.coord_format.f_bits, cfg.conic_format.f_bits
        fx, fp, fa = cfg.x0_format.f_bits, cfg.p0_format.f_bits, cfg.acc_format.f_bits
        x0_width = cfg.x0_format.width
        sched = _Schedule(m)

        # Cycle 0: the input register.
        for k in ("mx", "my", "a", "b", "c", "o", "row"):
            sched.stage(k, getattr(payload, k), 0)
        valid = Signal(name="valid_c0")
        m.d.sync += valid.eq(accept)
        sched.put("valid", valid, 0, ram=False)

        # Cycle 1: dy, the divisor a (1 for a degenerate conic), round(mx), bitlen(o).
        a = sched.at("a", 0)
        bad = a <= 0
        sched.stage("bad", bad, 1)
        sched.stage("a_div", Mux(bad, 1, a[:-1]), 1)
        sched.stage("dy", sched.at("my", 0) - sched.at("row", 0).shift_left(fq), 1)
        coord = cfg.coord_format
        sched.stage("mx_x0", requantize(sched.at("mx", 0), coord, SQ(coord.i_bits + 1, fx),
                                        rounding=rnd, overflow="wrap"), 1)
        o = sched.at("o", 0)
        olen = Const(0, range(len(o) + 1))
        for n in range(len(o)):
            olen = Mux(o[n], n + 1, olen)
        sched.stage("olen", olen, 1)

        def product(name, x_name, y_name, cycle):
            x, y = sched.at(x_name, cycle), sched.at(y_name, cycle)
            value, latency = _multiply(m, x, y, name)
            return sched.put(name, value, cycle + latency), cycle + latency

        _, t_ac = product("ac", "a", "c", 0)
        _, t_bb = product("bb", "b", "b", 0)
        t_k = max(t_ac, t_bb) + 1
        sched.stage("neg_det", sched.at("bb", t_k - 1) - sched.at("ac", t_k - 1), t_k)
        _, t_bdy = product("bdy", "b", "dy", 1)
        _, t_dy2 = product("dy2", "dy", "dy", 1)
        _, t_num_p = product("num_p0", "neg_det", "dy2", max(t_k, t_dy2))

        def divide(name, num_name, num_shift, den_name, den_shift, quotient_bits, cycle,
                   signed_num):
            num = sched.at(num_name, cycle).shift_left(num_shift)
            den = sched.at(den_name, cycle).shift_left(den_shift)
            magnitude = len(num) - int(signed_num)
            div = Divider(num_width=len(num), den_width=len(den), signed=signed_num,
                          quotient_bits=min(quotient_bits, magnitude),
                          stages_per_register=self._stages)
            m.submodules[name] = div
            m.d.comb += [div.num.eq(num), div.den.eq(den)]
            return div, cycle + div.latency

        ex = fx - fq
        div_x, t_qx = divide("div_x0", "bdy", max(ex, 0), "a_div", max(-ex, 0), x0_width,
                             t_bdy, True)
        ep = fp - fc - 2 * fq
        div_p, t_qp = divide("div_p0", "num_p0", max(ep, 0), "a_div", 1 + max(-ep, 0),
                             cfg.p0_format.width, t_num_p, True)

        def quotient(name, div, t_q, fmt, f_bits, offset=None):
            # Three cycles: the rounding increment; the sum; the saturation, where an overflowed
            # quotient, which keeps the numerator's sign, saturates that way.
            sched.stage(f"{name}_q", div.quotient, t_q + 1)
            sched.stage(f"{name}_up", round_up(div.quotient, div.remainder, div.divisor, rnd),
                        t_q + 1)
            sched.stage(f"{name}_over", div.overflow, t_q + 1)
            total = sched.at(f"{name}_q", t_q + 1) + sched.at(f"{name}_up", t_q + 1)
            if offset is not None:
                total = total + sched.at(offset, t_q + 1)
            total = sched.stage(f"{name}_sum", total, t_q + 2)
            big = Mux(sched.at(f"{name}_q", t_q + 2)[-1], fmt.min_int, fmt.max_int)
            sched.stage(name, Mux(sched.at(f"{name}_over", t_q + 2), big,
                                  requantize(total, _format(total, f_bits), fmt)), t_q + 3)
            return t_q + 3

        t_x0 = quotient("x0", div_x, t_qx, cfg.x0_format, fx, offset="mx_x0")
        t_p0 = quotient("p0", div_p, t_qp, cfg.p0_format, fp)

        # s = p0 + L[bitlen(o)]: the interval's half-width test.
        t_s = max(t_x0, t_p0) + 1
        table = cfg.log_table
        l_shape = signed(max(abs(v) for v in table if v is not None).bit_length() + 1)
        log_bound = Signal(l_shape, name="log_bound")
        no_o = Signal(name="no_o")
        with m.Switch(sched.at("olen", t_s - 1)):
            for n, v in enumerate(table):
                with m.Case(n):
                    if v is None:
                        m.d.comb += no_o.eq(1)
                    else:
                        m.d.comb += log_bound.eq(v)
        s = sched.at("p0", t_s - 1) + log_bound
        empty = sched.at("bad", t_s - 1) | no_o | (s < 0)
        sched.stage("empty0", empty, t_s)
        sched.stage("s", Mux(empty, 0, s)[:len(s) - 1], t_s)

        def rounded_up(name, floor, remainder, cycle):
            # ``floor + (remainder != 0)`` of ``cycle`` in two cycles: in an 8-lane GBU at
            # 93.0 MHz the OR tree of the remainder, routed into the 52-bit adder of ``w2``,
            # was the critical path.
            sched.stage(f"{name}_floor", floor, cycle + 1)
            sched.stage(f"{name}_inexact", remainder != 0, cycle + 1)
            sched.stage(name, sched.at(f"{name}_floor", cycle + 1)
                        + sched.at(f"{name}_inexact", cycle + 1), cycle + 2)
            return cycle + 2

        # w2 = ceil(2 s 2**k / a), computed below 2**(2B) (see the module docstring).
        half_width_bits = max(x0_width - 1, fx + _INDEX_BITS) + 1
        k = fc + 2 * fx - fp
        div_w, t_div = divide("div_w2", "s", 1 + max(k, 0), "a_div", 0, 2 * half_width_bits,
                              t_s, False)
        sched.stage("w2_over", div_w.overflow, t_div + 1)
        t_w2 = rounded_up("w2", div_w.quotient, div_w.remainder, t_div)

        root = SquareRoot(width=len(sched.at("w2", t_w2)), stages_per_register=self._stages)
        m.submodules.sqrt = root
        m.d.comb += root.x.eq(sched.at("w2", t_w2))
        t_root = rounded_up("root", root.root, root.remainder, t_w2 + root.latency)
        t_w = t_root + 1
        sched.stage("w", Mux(sched.at("w2_over", t_root), 1 << half_width_bits,
                             sched.at("root", t_root)), t_w)

        # The interval, clipped to the tile.
        one = 1 << fx
        x0 = sched.at("x0", t_w)
        w = sched.at("w", t_w)
        sched.stage("lo_raw", (x0 - w + (one - 1)).shift_right(fx), t_w + 1)
        sched.stage("hi_raw", (x0 + w).shift_right(fx), t_w + 1)
        lo_raw, hi_raw = sched.at("lo_raw", t_w + 1), sched.at("hi_raw", t_w + 1)
        # Clipped to the tile, and narrowed to -1..16 where that keeps ``lo > hi`` as it is.
        last = (1 << _INDEX_BITS) - 1
        sched.stage("lo_clip", Mux(lo_raw < 0, 0, Mux(lo_raw > last + 1, last + 1, lo_raw))
                    [:_INDEX_BITS + 1], t_w + 2)
        sched.stage("hi_clip", Mux(hi_raw > last, last, Mux(hi_raw < -1, -1, hi_raw))
                    [:_INDEX_BITS + 2].as_signed(), t_w + 2)
        lo, hi = sched.at("lo_clip", t_w + 2), sched.at("hi_clip", t_w + 2)
        empty = sched.at("empty0", t_w + 2) | (lo > hi)
        t_lh = t_w + 3
        sched.stage("empty", empty, t_lh)
        sched.stage("lo", Mux(empty, 1, lo)[:_INDEX_BITS + 1], t_lh)
        sched.stage("hi", Mux(empty, 0, hi)[:_INDEX_BITS + 1], t_lh)

        # u = lo - x0 (x0 units); P and D.
        t_u = t_lh + 1
        u = sched.stage("u", sched.at("lo", t_lh).shift_left(fx) - sched.at("x0", t_lh), t_u)
        sched.stage("v", u.shift_left(1) + one, t_u + 1)
        _, t_u2 = product("u2", "u", "u", t_u)
        _, t_au2 = product("au2", "a", "u2", t_u2)
        _, t_av = product("av", "a", "v", t_u + 1)

        # Each of P and D: negate; round (wrapping into a format one bit wider, which holds
        # it); add (P); saturate. One carry chain per cycle.
        acc = cfg.acc_format
        neg_au2 = sched.stage("neg_au2", -sched.at("au2", t_au2), t_au2 + 1)
        src = _format(neg_au2, fc + 2 * fx + 1)
        term2 = sched.stage("term2", requantize(neg_au2, src, SQ(src.i_bits + 1, fa),
                                                rounding=rnd, overflow="wrap"), t_au2 + 2)
        p_sum = sched.stage("p_sum", sched.at("p0", t_au2 + 2).shift_left(fa - fp) + term2,
                            t_au2 + 3)
        sched.stage("P", requantize(p_sum, _format(p_sum, fa), acc), t_au2 + 4)
        neg_av = sched.stage("neg_av", -sched.at("av", t_av), t_av + 1)
        src = _format(neg_av, fc + fx + 1)
        d_wide = sched.stage("d_wide", requantize(neg_av, src, SQ(src.i_bits + 1, fa),
                                                  rounding=rnd, overflow="wrap"), t_av + 2)
        sched.stage("D", requantize(d_wide, _format(d_wide, fa), acc), t_av + 3)
        t_end = max(t_au2 + 4, t_av + 3)

        fields = _result_fields(cfg)
        result = Signal(data.StructLayout(fields))
        m.d.comb += [getattr(result, k).eq(sched.at(k, t_end)) for k in fields]
        return result, sched.at("valid", t_end), t_end
