"""A row shader lane of the Gaussian Blending Unit (DESIGN.md 7.2; bit-exact with
:mod:`golden.gbu_model`, stage 3).

The lane takes row records, one per (Gaussian, row) with a non-empty interval, and evaluates
their pixels ``lo .. hi`` one per cycle: the power (IRSS: ``P``, then ``P += D; D -= a``; naive:
:class:`~hw.gbu.naive_power.NaivePower` on every pixel of the row), the exp and alpha
(:class:`~hw.gbu.exp_unit.ExpUnit`), the skip and early-stop tests, and the blend into the
per-pixel state ``T``, ``C``, ``n_blended``, ``n_contrib``, ``done`` of the rows it holds.

Pixel state lives in block RAM (:class:`~hw.lib.block_ram.RegisteredRAM`: synchronous read,
registered output, so it costs no LUTs and leaves the RAM on a register), each memory twice: one
copy is read by the blend, the other by the read-out, and both are written alike; ``done`` and
"still initial" (``fresh``) bits are in flip-flops so that a tile starts in one cycle and each
row's "all done" is a plain AND. The state has two banks: the lane shades one tile into one
bank while the previous tile is read out of the other. A marker record closes a tile: it passes
down the pipeline behind the tile's last pixel and, as it leaves, reports the bank complete
(:attr:`drained`).

Read-modify-write hazard. ``T`` of a pixel is used in stage ``T0`` and written back in stage
``T4``: the product ``T (1 - alpha)`` is a two-DSP multiply, then a rounding adder and the
``t_min`` comparison, which cannot close in one 10 ns cycle with the memory read. So two
evaluations of the same pixel must be at least :data:`HAZARD_SPACING` cycles apart. That only
happens when consecutive records of the same row overlap within a few pixels (rows of the other
slots interleave with them in the queue); the issue stage compares the pixel it is about to
issue with the last ``HAZARD_SPACING - 1`` issued ones and waits while one matches, instead of
forwarding through the multiplier, which is the loop itself. The block RAM read is launched two
cycles before ``T0`` and misses the writes of the three cycles before it; those few are
forwarded from registers (compared with the address a cycle ahead, so ``T0`` only multiplexes
registers), so the RAM adds no spacing. ``C`` is read in ``T4`` and written in ``T7``, which the
spacing covers.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..lib.block_ram import RegisteredRAM
from ..lib.component import ConfiguredComponent, check_config
from ..lib.fixed import fixed_shape
from ..lib.stream import PointerBuffer
from .config import GBUConfig
from .exp_unit import (ExpUnit, PRODUCT_LATENCY, delay, registered_product, rounded_shift,
                       rounding_threshold, saturated)
from .naive_power import NaivePower


__all__ = ["RowShader", "row_done_copy", "lane_record_layout", "pixel_state_layout", "slot_bits",
           "lane_rows", "HAZARD_SPACING"]

#: Minimum distance in cycles between two evaluations of the same pixel: ``T`` is read in
#: stage ``T0`` and written at the end of stage ``T4``.
HAZARD_SPACING = 5
#: Writes of ``T`` that a read from block RAM launched two cycles before ``T0`` misses: those
#: of the three cycles before ``T0`` (a write lands one cycle after its request).
_FORWARD = 3
#: Cycles of a read-out: a :class:`~hw.lib.block_ram.RegisteredRAM` read, then a register.
_RD_LATENCY = 3


def slot_bits(config):
    """Width of a slot number (at least 1)."""
    return max(1, (config.slots - 1).bit_length())


def lane_rows(config, lane):
    """Tile rows held by ``lane``, by slot."""
    return list(range(lane, config.tile, config.lanes))


def lane_record_layout(config):
    """Payload of a row record into a lane.

    ``irss``: ``lo``, ``hi`` (the interval; empty when ``lo > hi``), ``P``, ``D``, ``a_acc``
    (``acc_format``). ``naive``: ``mx``, ``my``, ``a``, ``b``, ``c`` (raw, as the setup's input)
    and ``row``. Both: ``o``, ``color`` (3 channels), ``slot`` (the row's slot in the lane),
    ``index`` (the Gaussian's list position plus one, for ``n_contrib``), ``bank`` (the state
    bank of the tile) and ``marker`` (the tile's end: no pixel, the other fields unused).
    """
    common = {
        "o": fixed_shape(config.alpha_format),
        "color": data.ArrayLayout(fixed_shape(config.color_format), 3),
        "slot": unsigned(slot_bits(config)),
        "index": unsigned(config.index_width),
        "bank": unsigned(1),
        "marker": unsigned(1),
    }
    if config.dataflow == "irss":
        acc = fixed_shape(config.acc_format)
        return data.StructLayout({"lo": unsigned(4), "hi": unsigned(4), "P": acc, "D": acc,
                                  "a_acc": acc, **common})
    coord, conic = fixed_shape(config.coord_format), fixed_shape(config.conic_format)
    return data.StructLayout({"mx": coord, "my": coord, "a": conic, "b": conic, "c": conic,
                              "row": unsigned(4), **common})


def pixel_state_layout(config):
    """A pixel's state as read out: ``t`` (``t_format``), ``color`` (3 x ``color_acc_format``,
    without the background term), ``n_blended``, ``n_contrib``."""
    count = unsigned(config.index_width)
    return data.StructLayout({
        "t": fixed_shape(config.t_format),
        "color": data.ArrayLayout(fixed_shape(config.color_acc_format), 3),
        "n_blended": count,
        "n_contrib": count,
    })


def _starting(lane, n):
    """Bit ``n`` of ``lane.row_done`` belongs to the bank being started."""
    return lane.start & (lane.start_bank == n >> slot_bits(lane.config))


def row_done_copy(m, lane, name):
    """A register copy of ``lane.row_done``, a cycle later, whose started bank's bits clear at
    a start as ``row_done``'s do: like ``row_done``, it may show a stopped row running for a
    cycle (or two), never a running row stopped. For readers placed far from the pixel state."""
    sb = slot_bits(lane.config)
    copy = Signal(2 << sb, name=name)
    m.d.sync += [copy[n].eq(lane.row_done[n] & ~_starting(lane, n)) for n in range(2 << sb)]
    return copy


def valid_delay(m, value, cycles, name):
    """A valid bit ``cycles`` cycles later (reset registers, unlike :func:`delay`'s)."""
    for n in range(cycles):
        reg = Signal(name=f"{name}_v{n}")
        m.d.sync += reg.eq(value)
        value = reg
    return value


class RowShader(ConfiguredComponent):
    """One row shader lane: holds rows ``lane``, ``lane + lanes``, ... of the tile (slot ``s`` is
    row ``lane + s * lanes``) and evaluates one (Gaussian, pixel) pair per cycle.

    Parameters
    ----------
    config : GBUConfig
    lane : int
        Which lane, ``0 .. lanes - 1``.

    Interface attributes
    --------------------
    i : In(stream.Signature(lane_record_layout(config)))
        Row records in list order per row, each tile's closed by a marker. An IRSS record with
        ``lo > hi`` is taken and dropped in one cycle; a record of a row that has stopped ends
        without evaluating its remaining pixels. ``i.ready`` depends on registers only.
    start, start_bank : In(1), In(1)
        Pulse ``start`` to begin a tile in bank ``start_bank`` (which no record in flight may
        use) whose first ``cols`` columns and ``rows`` rows are inside the image. Pixels
        outside start done; every pixel starts with ``T = 1``, ``C = 0``, no Gaussian. Takes
        effect at the next clock edge.
    cols, rows : In(unsigned(5))
        Read at ``start``, 1..16.
    row_done : Out(2 << slot_bits(config))
        Bit ``bank * 2**slot_bits + s``: every pixel of slot ``s`` of the bank has stopped (or
        is outside; slots past the tile's last row are always done). A register, a cycle late
        (the AND of a row's flip-flops is far from most of its readers), except that ``start``
        clears the started bank's bits at once: a bit may show a stopped row running for a
        cycle, never a running row stopped.
    drained : Out(2)
        Bit ``b`` pulses for one cycle when a marker of bank ``b`` leaves the pipeline: every
        record before it has been written into the state.
    busy : Out(1)
        A record is waiting or being evaluated, or a pixel is still in the pipeline.
    issuing : Out(1)
        A pixel evaluation starts in this cycle (for utilization counts).
    rd_bank : In(1), rd_slot : In(unsigned(slot_bits(config))), rd_x : In(unsigned(4))
    rd : Out(pixel_state_layout(config))
        The state of the pixel addressed :attr:`rd_latency` cycles before (block RAM read ports
        of their own), from a register.
    """

    def __init__(self, *, config, lane):
        check_config("RowShader", config, GBUConfig)
        if not isinstance(lane, int) or not 0 <= lane < config.lanes:
            raise ValueError(f"RowShader.lane={lane!r} is out of range: expected "
                             f"0..{config.lanes - 1}")
        self._lane = lane
        super().__init__(config, {
            "i": In(stream.Signature(lane_record_layout(config))),
            "start": In(1),
            "start_bank": In(1),
            "cols": In(unsigned(5)),
            "rows": In(unsigned(5)),
            "row_done": Out(2 << slot_bits(config)),
            "drained": Out(2),
            "busy": Out(1),
            "issuing": Out(1),
            "rd_bank": In(1),
            "rd_slot": In(unsigned(slot_bits(config))),
            "rd_x": In(unsigned(4)),
            "rd": Out(pixel_state_layout(config)),
        })


    @property
    def lane(self):
        return self._lane

    @property
    def rd_latency(self):
        """Cycles from ``rd_bank``/``rd_slot``/``rd_x`` to ``rd``."""
        return _RD_LATENCY

    @staticmethod
    def _forward(m, mem, addr_next, layout):
        """The word at ``addr0``, the address ``addr_next`` holds in the cycle before, with every
        write up to the previous cycle: ``mem``'s read, launched ``mem.latency`` cycles before
        ``addr0``, misses the writes of the last :data:`_FORWARD` cycles
        (:class:`~hw.lib.block_ram.RegisteredRAM` stores a write one cycle late), so those are
        kept here and override it, the most recent first. Each write is compared with
        ``addr_next`` a cycle ahead, which leaves a multiplexer on registers in ``addr0``'s
        cycle."""
        overrides = []
        en, at, word = mem.w_en, mem.w_addr, mem.w_data
        for n in range(_FORWARD):
            hit = Signal(name=f"fwd_hit{n}")
            kept = Signal.like(word, name=f"fwd_word{n}", reset_less=True)
            m.d.sync += [hit.eq(en & (at == addr_next)), kept.eq(word)]
            overrides.append((hit, kept))
            if n + 1 < _FORWARD:
                en_n = Signal(name=f"fwd_en{n}")
                at_n = Signal.like(at, name=f"fwd_addr{n}", reset_less=True)
                m.d.sync += [en_n.eq(en), at_n.eq(at)]
                en, at, word = en_n, at_n, kept
        value = mem.r_data
        for hit, kept in reversed(overrides):
            value = Mux(hit, kept, value)
        result = Signal(layout)
        m.d.comb += result.eq(value)
        return result

    def _issue_stage(self, m):
        """Records in, one pixel offered per cycle: returns ``(issue, addr, x, cur, pending)``,
        registers of the pixel issued a cycle before (``issue``; ``addr`` of its state, ``x``,
        its record ``cur`` with ``P`` and ``D`` advanced to ``x``) and ``pending``, a record is
        waiting or being issued.

        The decision to issue runs on a loop of a few narrow registers (the pixel offered, the
        issue history, a hazard flag computed a cycle ahead), and the record's wide fields follow
        a cycle behind it, loaded and advanced by registered copies of its decisions: in an
        8-lane GBU at 61 MHz the loop was the hazard compare, then the decision fanned out to
        the enables of some 340 flip-flops of the record and of its input register, 9 ns of
        routing.
        """
        cfg = self._config
        irss = cfg.dataflow == "irss"
        sb = slot_bits(cfg)
        layout = lane_record_layout(cfg)

        # Records come through a PointerBuffer: the lane's queue sits by the row setup, and the
        # decision to load gates only the buffer's pointers, not a record's enables.
        m.submodules.records = records = PointerBuffer(layout)
        wiring.connect(m, wiring.flipped(self.i), records.i)
        head = records.o.payload

        # The pixel offered: ``x`` of row ``row`` (slot and bank) until ``hi``.
        x = Signal(4, reset_less=True)
        hi = Signal(4, reset_less=True)
        row = Signal(1 + sb, reset_less=True)
        marker = Signal(reset_less=True)
        active = Signal()
        addr = Signal(5 + sb)
        m.d.comb += addr.eq(Cat(x, row))

        # The last HAZARD_SPACING - 1 issued pixels (see the module docstring) and whether the
        # pixel offered is one of them.
        history = [(Signal(name=f"hist_v{n}"), Signal(5 + sb, name=f"hist_a{n}", reset_less=True))
                   for n in range(HAZARD_SPACING - 1)]
        hazard = Signal()
        # A record whose row has stopped meanwhile ends at once: the row setup runs far ahead of
        # the lane, so rows that stop leave records in flight that would change nothing. The
        # issue stage reads a copy of ``row_done`` beside it (another cycle late, cleared at a
        # start as ``row_done`` is): ``row_done`` sits by the pixel state, far from here.
        stopped = row_done_copy(m, self, "stopped")
        dead = Signal()
        issue = Signal()
        last = Signal()
        load = Signal()
        m.d.comb += [
            dead.eq(stopped.bit_select(row, 1) & ~marker),
            issue.eq(active & ~hazard & ~dead),
            last.eq(active & (dead | (issue & (x == hi)))),
            records.o.ready.eq(~active | last),
            load.eq(records.o.valid & records.o.ready),
        ]
        prev_v, prev_a = issue, addr
        for v, a in history:
            m.d.sync += [v.eq(prev_v), a.eq(prev_a)]
            prev_v, prev_a = v, a

        # A marker is offered once, as a pixel that changes nothing.
        first_x = Mux(head.marker, 0, head.lo) if irss else Const(0, 4)
        with m.If(load):
            m.d.sync += [x.eq(first_x), row.eq(Cat(head.slot, head.bank)),
                         marker.eq(head.marker)]
            if irss:
                m.d.sync += [hi.eq(Mux(head.marker, 0, head.hi)),
                             active.eq(head.marker | (head.lo <= head.hi))]
            else:
                m.d.sync += [hi.eq(Mux(head.marker, 0, 15)), active.eq(1)]
        with m.Else():
            with m.If(issue):
                m.d.sync += x.eq(x + 1)
            with m.If(last):
                m.d.sync += active.eq(0)

        # The hazard of the pixel offered next, against the history as it will be.
        def seen(at):
            return Cat(v & (a == at) for v, a in history[:-1]).any()
        loaded_addr = Cat(first_x, head.slot, head.bank)
        m.d.sync += hazard.eq(Mux(load, (issue & (addr == loaded_addr)) | seen(loaded_addr),
                                  Mux(issue, seen(Cat((x + 1)[:4], row)), seen(addr))))

        # A cycle behind: the pixel issued and its record.
        issued = Signal()
        loaded = Signal()
        m.d.sync += [issued.eq(issue), loaded.eq(load)]
        cur = Signal(layout, reset_less=True)
        with m.If(loaded):
            m.d.sync += cur.eq(records.previous)
        if irss:
            with m.Elif(issued):
                # Wrapping additions: P and D stay exact modulo 2**width, and every P that is
                # evaluated lies in acc_format (the model checks it).
                m.d.sync += [cur.P.eq(cur.P + cur.D), cur.D.eq(cur.D - cur.a_acc)]
        pending = Signal()
        m.d.comb += pending.eq(records.o.valid | active)
        return issued, delay(m, addr, 1, "issued_addr"), delay(m, x, 1, "issued_x"), cur, pending

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        irss = cfg.dataflow == "irss"
        sb = slot_bits(cfg)
        bank_pixels = 16 << sb
        pixels = 2 * bank_pixels
        rows_held = lane_rows(cfg, self._lane)
        issue, addr, x, cur, pending = self._issue_stage(m)

        # Power, then exp and alpha.
        if irss:
            power, front = cur.P, 0
        else:
            m.submodules.naive = naive = NaivePower(config=cfg)
            m.d.comb += [naive.mx.eq(cur.mx), naive.my.eq(cur.my), naive.a.eq(cur.a),
                         naive.b.eq(cur.b), naive.c.eq(cur.c), naive.x.eq(x),
                         naive.row.eq(cur.row)]
            power, front = naive.power, naive.latency
        m.submodules.exp = exp = ExpUnit(config=cfg)
        m.d.comb += [exp.power.eq(power), exp.o.eq(delay(m, cur.o, front, "o")),
                     self.issuing.eq(issue & ~cur.marker)]
        to_t0 = front + exp.latency
        valid0 = valid_delay(m, issue & ~cur.marker, to_t0, "issue")
        addr_next = delay(m, addr, to_t0 - 1, "addr")
        addr0 = delay(m, addr_next, 1, "addr")
        index0 = delay(m, cur.index, to_t0, "index")
        color0 = delay(m, cur.color, to_t0, "color")

        # State: T and the counts, C, each in block RAM twice (one copy read by the blend, one
        # by the read-out, both written alike); done and fresh bits in flip-flops.
        t_layout = data.StructLayout({"t": fixed_shape(cfg.t_format),
                                      "n_blended": unsigned(cfg.index_width),
                                      "n_contrib": unsigned(cfg.index_width)})
        c_layout = data.ArrayLayout(fixed_shape(cfg.color_acc_format), 3)
        t_mem, t_out = (RegisteredRAM(width=t_layout.size, depth=pixels) for _ in range(2))
        c_mem, c_out = (RegisteredRAM(width=c_layout.size, depth=pixels) for _ in range(2))
        m.submodules.t_mem, m.submodules.t_out = t_mem, t_out
        m.submodules.c_mem, m.submodules.c_out = c_mem, c_out
        done = Signal(pixels)
        fresh = Signal(pixels, init=(1 << pixels) - 1)
        one_t = 1 << cfg.t_format.f_bits
        one_a = 1 << cfg.alpha_format.f_bits

        # T0 - 2: read; T0: forward; T1: operands; T1-T3: T (1 - alpha); T4: decide and write T.
        ahead = t_mem.latency
        m.d.comb += [t_mem.r_en.eq(1), t_mem.r_addr.eq(delay(m, addr, to_t0 - ahead, "addr"))]
        t_wr = Signal(t_layout)
        t_rd = self._forward(m, t_mem, addr_next, t_layout)
        # The pixel's fresh and done bits, selected a cycle ahead like the forwarding compares
        # (in a 1-lane GBU at 91 MHz the 64:1 selects and the compares after ``addr0`` were the
        # critical path) and set below.
        fresh0 = Signal(reset_less=True)
        live0 = Signal(reset_less=True)
        valid1 = valid_delay(m, valid0, 1, "t1")
        addr1 = delay(m, addr0, 1, "addr")
        t_cur = Signal(fixed_shape(cfg.t_format), reset_less=True)
        nb_cur = Signal(cfg.index_width, reset_less=True)
        fresh1 = Signal(reset_less=True)
        live1 = Signal(reset_less=True)
        keep = Signal(cfg.alpha_format.width, reset_less=True)
        m.d.sync += [
            t_cur.eq(Mux(fresh0, one_t, t_rd.t)),
            nb_cur.eq(Mux(fresh0, 0, t_rd.n_blended)),
            fresh1.eq(fresh0),
            live1.eq(live0),
            keep.eq(one_a - exp.alpha),
        ]
        take1 = delay(m, exp.take, 1, "take")
        remain = registered_product(m, platform, keep, t_cur, "remain")  # T (1 - alpha)
        t_late = delay(m, t_cur, PRODUCT_LATENCY, "t_cur")
        test_t = Signal(len(t_cur) + 1, reset_less=True)
        below_t_min = Signal(reset_less=True)       # test_t < t_min, from the unrounded product
        weight = Signal(len(t_cur) + 1, reset_less=True)
        fa = cfg.alpha_format.f_bits
        m.d.sync += [
            test_t.eq(rounded_shift(remain, fa, cfg.rounding)),
            below_t_min.eq(remain < rounding_threshold(cfg.t_min_raw, fa, cfg.rounding)),
            # alpha T = T - T (1 - alpha) exactly: no second multiplier.
            weight.eq(rounded_shift((t_late << fa) - remain, fa, cfg.rounding)),
        ]
        stages = PRODUCT_LATENCY + 1
        valid4 = valid_delay(m, valid1, stages, "t4")
        addr4 = delay(m, addr1, stages, "addr4")
        take4 = delay(m, take1 & live1, stages, "take4")
        nb4 = delay(m, nb_cur, stages, "nb")
        fresh4 = delay(m, fresh1, stages, "fresh4")
        index4 = delay(m, index0, 1 + stages, "index4")
        stop = take4 & below_t_min
        blend = Signal()
        m.d.comb += [
            blend.eq(valid4 & take4 & ~stop),
            t_wr.t.eq(test_t),
            t_wr.n_blended.eq(nb4 + 1),
            t_wr.n_contrib.eq(index4),
        ]
        for mem in (t_mem, t_out):
            m.d.comb += [mem.w_addr.eq(addr4), mem.w_en.eq(blend), mem.w_data.eq(t_wr)]

        # T4-T6: color w; T7: C += round(color w), saturated, read at T4 and written at T7.
        # The read is registered at T6 (``c_cur``, zero for a fresh pixel) before the adder, so
        # the route out of the block RAM and the adder are in different cycles. A pixel's
        # evaluations are HAZARD_SPACING apart, so the read comes after the previous write has
        # landed and C needs no forwarding.
        color4 = delay(m, color0, 1 + stages, "color4")
        shift = cfg.color_format.f_bits + cfg.t_format.f_bits - cfg.color_acc_format.f_bits
        adds = []
        for ch in range(3):
            product = registered_product(m, platform, color4[ch], weight, f"cw{ch}")
            add = Signal(len(product) + max(0, -shift) + 1, name=f"add{ch}", reset_less=True)
            m.d.sync += add.eq(rounded_shift(product, shift, cfg.rounding))
            adds.append(add)
        stages_c = PRODUCT_LATENCY + 1
        blend7 = valid_delay(m, blend, stages_c, "blend7")
        m.d.comb += [c_mem.r_en.eq(1),
                     c_mem.r_addr.eq(delay(m, addr4, stages_c - 1 - c_mem.latency, "addr_c"))]
        addr7 = delay(m, addr4, stages_c, "addr7")
        fresh6 = delay(m, fresh4, stages_c - 1, "fresh6")
        c_rd = Signal(c_layout)
        c_cur = Signal(c_layout, reset_less=True)
        c_wr = Signal(c_layout)
        m.d.comb += c_rd.eq(c_mem.r_data)
        m.d.sync += c_cur.eq(Mux(fresh6, 0, c_rd))
        for ch in range(3):
            m.d.comb += c_wr[ch].eq(saturated(c_cur[ch] + adds[ch], cfg.color_acc_format))
        for mem in (c_mem, c_out):
            m.d.comb += [mem.w_addr.eq(addr7), mem.w_en.eq(blend7), mem.w_data.eq(c_wr)]

        # done / fresh bits (a stop or blend never hits the bank being started), row_done.
        with m.If(valid4 & stop):
            m.d.sync += done.bit_select(addr4, 1).eq(1)
        with m.If(blend):
            m.d.sync += fresh.bit_select(addr4, 1).eq(0)
        # The bits at ``addr0`` a cycle ahead, with this cycle's write to them (HAZARD_SPACING
        # lets it hit the pixel reaching T0 next). A start never touches a bank in flight.
        # Whether the write is to that pixel (``addr4 == addr_next``) is compared a cycle
        # earlier still, on the addresses a stage before each: in a 1-lane GBU at 99.3 MHz the
        # compare and then the 64:1 select of ``done`` were the critical path.
        lands = Signal()
        m.d.sync += lands.eq(delay(m, addr1, stages - 1, "addr3") ==
                             delay(m, addr, to_t0 - 2, "addr"))
        m.d.sync += [fresh0.eq(fresh.bit_select(addr_next, 1) & ~(blend & lands)),
                     live0.eq(~done.bit_select(addr_next, 1) & ~(valid4 & stop & lands))]
        with m.If(self.start):
            init = []
            for slot in range(1 << sb):
                for px in range(16):
                    if slot < len(rows_held):
                        init.append(~((px < self.cols) & (rows_held[slot] < self.rows)))
                    else:
                        init.append(Const(1, 1))
            for bank in range(2):
                region = slice(bank * bank_pixels, (bank + 1) * bank_pixels)
                with m.If(self.start_bank == bank):
                    m.d.sync += [done[region].eq(Cat(init)),
                                 fresh[region].eq((1 << bank_pixels) - 1)]
        m.d.sync += [self.row_done[n].eq(~_starting(self, n) & done[16 * n:16 * n + 16].all())
                     for n in range(2 << sb)]

        # Busy: the record in the issue stage and every pixel until its C write.
        in_flight = Signal(range(to_t0 + 1 + stages + stages_c + 2))
        finished = valid_delay(m, valid4, stages_c, "finished")
        m.d.sync += in_flight.eq(in_flight + (issue & ~cur.marker) - finished)
        m.d.comb += self.busy.eq(pending | issue | (in_flight != 0))
        # The marker travels as far as the last state write, in order behind every pixel.
        through = to_t0 + 1 + stages + stages_c
        marker_out = valid_delay(m, issue & cur.marker, through, "marker")
        marker_bank = delay(m, cur.bank, through, "marker_bank")
        m.d.comb += self.drained.eq(Mux(marker_out, Mux(marker_bank, 0b10, 0b01), 0))

        # Read-out: the state with fresh pixels at their initial values, from a register: the
        # core selects among the lanes, which are spread over the die, so the route there
        # starts at a flip-flop and not after the block RAM's output and this multiplexer.
        rd_addr = Cat(self.rd_x, self.rd_slot, self.rd_bank)
        for mem in (t_out, c_out):
            m.d.comb += [mem.r_en.eq(1), mem.r_addr.eq(rd_addr)]
        rd_fresh = delay(m, fresh.bit_select(rd_addr, 1), t_out.latency, "rd_fresh")
        rd_t, rd_c = Signal(t_layout), Signal(c_layout)
        rd_state = Signal(pixel_state_layout(cfg), reset_less=True)
        m.d.comb += [rd_t.eq(t_out.r_data), rd_c.eq(c_out.r_data), self.rd.eq(rd_state)]
        m.d.sync += [
            rd_state.t.eq(Mux(rd_fresh, one_t, rd_t.t)),
            rd_state.n_blended.eq(Mux(rd_fresh, 0, rd_t.n_blended)),
            rd_state.n_contrib.eq(Mux(rd_fresh, 0, rd_t.n_contrib)),
        ]
        for ch in range(3):
            m.d.sync += rd_state.color[ch].eq(Mux(rd_fresh, 0, rd_c[ch]))
        return m
