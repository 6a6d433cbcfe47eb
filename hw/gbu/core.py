"""The Gaussian Blending Unit: tiles of Gaussians in list order in, 256 pixels per tile out
(DESIGN.md 7.2; bit-exact with :func:`golden.gbu_model.render_gbu` per tile).

Front end: each Gaussian of the tile is broadcast into the queue (a
:class:`~hw.lib.stream.StreamFIFO` of ``gaussian_fifo_depth``, entered through a
:class:`~hw.lib.stream.PointerBuffer`) of every row setup
(``row_setups`` of them, IRSS; one per lane in the naive dataflow); a row generator walks the rows
of the lanes that setup serves for the Gaussian at the head of its queue, slot by slot and lane
by lane, into the row setup (:class:`~hw.gbu.row_setup.RowSetup`), which makes one record per
cycle. The generator passes over, without spending a cycle, rows that have stopped and (IRSS)
rows outside the Gaussian's row range, which comes with the Gaussian (``rows_above``,
``rows_below``: computed where it is quantized, :func:`golden.gbu_model.row_range`, a superset
of the rows whose interval is non-empty); a Gaussian whose range is empty is dropped as it is
taken. The row setup's non-empty records
go to the queue of their lane (``record_fifo_depth``, so that a lane with light rows runs ahead
of one with heavy rows) and from there to the lane (:class:`~hw.gbu.lane.RowShader`), which
spends an interval's length on each. In the naive dataflow the generator feeds its lane
directly, every pixel of every row. Once every row of the tile has stopped, the remaining
Gaussians are taken and dropped.

Tiles overlap: the lanes hold two banks of pixel state. A tile is shaded into one bank; after its
list, a marker goes down every lane's path, and once it has left every lane the bank is read
out in row-major order (background term ``round(T bg)`` added, through an output queue) while
the next tile is already being set up and shaded into the other bank. So the row setup's
latency, the drain of the lanes and the 256 read-out cycles are hidden whenever a tile's
shading takes longer than them.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..lib.component import ConfiguredComponent, check_config
from ..lib.fixed import fixed_shape
from ..lib.stream import PointerBuffer, StreamFIFO
from .config import GBUConfig
from .exp_unit import delay, rounded_shift, saturated
from .lane import RowShader, lane_record_layout, lane_rows, row_done_copy, slot_bits


__all__ = ["GaussianBlendingUnit", "splat_layout", "tile_layout", "pixel_layout"]

#: Depth of the output pixel queue; read-out issues a pixel only while the queue has room for
#: it and every pixel still in the read-out pipeline.
_OUT_DEPTH = 8


def splat_layout(config):
    """One Gaussian as :func:`golden.gbu_model.quantize_splats` gives it: ``mx``, ``my``
    (``coord_format``, tile-relative), ``a``, ``b``, ``c`` (``conic_format``), ``o``
    (``alpha_format``), ``color`` (3 x ``color_format``), and its row range
    (:func:`golden.gbu_model.row_range`): ``rows_above`` and ``rows_below``, the rows at the top
    and at the bottom of the tile that IRSS does not set up (none when both are 0, the safe
    default; none is set up when they add up to ``tile`` or more). Naive ignores the range."""
    coord, conic = fixed_shape(config.coord_format), fixed_shape(config.conic_format)
    rows = unsigned((config.tile - 1).bit_length())
    return data.StructLayout({
        "mx": coord, "my": coord, "a": conic, "b": conic, "c": conic,
        "o": fixed_shape(config.alpha_format),
        "color": data.ArrayLayout(fixed_shape(config.color_format), 3),
        "rows_above": rows, "rows_below": rows,
    })


def tile_layout(config):
    """A tile header: ``count`` Gaussians follow; the first ``cols`` columns and ``rows`` rows
    (1..16) are inside the image."""
    return data.StructLayout({"count": unsigned(config.index_width), "cols": unsigned(5),
                              "rows": unsigned(5)})


def pixel_layout(config):
    """An output pixel: ``color`` (r, g, b in ``color_acc_format``, background included), ``t``
    (final ``T``, ``t_format``), ``n_contrib``, ``n_blended``."""
    count = unsigned(config.index_width)
    return data.StructLayout({
        "color": data.ArrayLayout(fixed_shape(config.color_acc_format), 3),
        "t": fixed_shape(config.t_format),
        "n_contrib": count,
        "n_blended": count,
    })


class GaussianBlendingUnit(ConfiguredComponent):
    """Gaussian Blending Unit core with ``lanes`` row shader lanes.

    Parameters
    ----------
    config : GBUConfig

    Interface attributes
    --------------------
    tile : In(stream.Signature(tile_layout(config)))
        One header per tile, taken once the previous tile's list has been taken and the tile
        before that has been read out of the lanes (two tiles in the core at most).
    splats : In(stream.Signature(splat_layout(config)))
        The tile's ``count`` Gaussians, front to back, after its header.
    pixels : Out(stream.Signature(pixel_layout(config)))
        256 pixels per tile, row-major, tiles in order; pixels outside the image are those of an
        empty tile.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`~hw.gbu.config.GBUConfig`.
    """

    def __init__(self, *, config):
        check_config("GaussianBlendingUnit", config, GBUConfig)
        super().__init__(config, {
            "tile": In(stream.Signature(tile_layout(config))),
            "splats": In(stream.Signature(splat_layout(config))),
            "pixels": Out(stream.Signature(pixel_layout(config))),
        })


    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        lanes = [RowShader(config=cfg, lane=n) for n in range(cfg.lanes)]
        for n, lane in enumerate(lanes):
            m.submodules[f"lane{n}"] = lane

        sb = slot_bits(cfg)

        # Input side: header, then the list into bank ``bank_in``, then a marker closing it.
        remaining = Signal(cfg.index_width)
        # ``remaining != 0`` as a register, decided a cycle ahead: in an 8-lane GBU at 81.7 MHz
        # its compare led the path from ``remaining`` through ``splats.ready`` into the queues'
        # levels.
        more = Signal()
        index = Signal(cfg.index_width)
        bank_in = Signal()
        used = Signal(2)                  # the bank holds a tile not yet read out
        listing = Signal()
        m.d.comb += [lane.cols.eq(self.tile.payload.cols) for lane in lanes]
        m.d.comb += [lane.rows.eq(self.tile.payload.rows) for lane in lanes]
        m.d.comb += [lane.start_bank.eq(bank_in) for lane in lanes]
        # Every row of the tile has stopped: a register (the lanes' ``row_done`` are far
        # apart), a cycle later than theirs, and low in the cycle after a start: in the start's
        # own cycle theirs still show the bank's previous tile.
        all_done = Signal()
        m.d.sync += all_done.eq(
            Cat(lane.row_done.word_select(bank_in, 1 << sb).all() for lane in lanes).all()
            & ~(self.tile.valid & self.tile.ready))

        # Broadcast: a Gaussian is taken once every front's queue has room; after every row has
        # stopped it is taken and dropped. With the list taken, a marker goes to every queue.
        item = data.StructLayout({"splat": splat_layout(cfg), "index": unsigned(cfg.index_width),
                                  "bank": unsigned(1), "marker": unsigned(1)})
        if cfg.dataflow == "naive":
            groups = [[lane] for lane in lanes]
        else:
            groups = [[lanes[n] for n in cfg.setup_lanes(g)] for g in range(cfg.row_setups)]
        queues = [StreamFIFO(item, depth=cfg.gaussian_fifo_depth) for _ in groups]
        # Each queue is entered through a register slice whose ``i.ready`` is a register: in an
        # 8-lane GBU at 89.5 MHz the loop from the queue's level through ``room``, the
        # broadcast's valid and back into the level was the critical path, mostly routing.
        entries = [PointerBuffer(item) for _ in groups]
        for n, (entry, q) in enumerate(zip(entries, queues)):
            m.submodules[f"gaussians{n}"] = q
            m.submodules[f"gaussian_entry{n}"] = entry
            wiring.connect(m, entry.o, q.i)
        room = Cat(entry.i.ready for entry in entries).all()
        m.d.comb += [
            self.tile.ready.eq(~listing & ~used.bit_select(bank_in, 1)),
            self.splats.ready.eq(listing & more & room),
        ]
        took = self.splats.valid & self.splats.ready
        closing = listing & ~more & room
        # A Gaussian whose row range is empty has no row to set up (IRSS): dropped at once.
        if cfg.dataflow == "irss":
            splat = self.splats.payload
            no_rows = splat.rows_above + splat.rows_below >= cfg.tile
        else:
            no_rows = Const(0)
        for entry in entries:
            m.d.comb += [entry.i.valid.eq((took & ~all_done & ~no_rows) | closing),
                         entry.i.payload.splat.eq(self.splats.payload),
                         entry.i.payload.index.eq(index + 1), entry.i.payload.bank.eq(bank_in),
                         entry.i.payload.marker.eq(closing)]
        with m.If(self.tile.valid & self.tile.ready):
            m.d.comb += [lane.start.eq(1) for lane in lanes]
            m.d.sync += [remaining.eq(self.tile.payload.count),
                         more.eq(self.tile.payload.count != 0), index.eq(0), listing.eq(1),
                         used.bit_select(bank_in, 1).eq(1)]
        with m.If(took):
            m.d.sync += [remaining.eq(remaining - 1), more.eq(remaining != 1),
                         index.eq(index + 1)]
        with m.If(closing):
            m.d.sync += [listing.eq(0), bank_in.eq(~bank_in)]

        for g, (group, q) in enumerate(zip(groups, queues)):
            self._front(m, g, group, q)

        # A bank is complete once its marker has left every lane.
        # ``complete`` is registered twice (per bank, then the read bank's), so the start of a
        # read-out decides on a register: in an 8-lane GBU at 88.7 MHz the route from
        # ``bank_out``, fanned out to the lanes' read addresses, through this AND to the
        # read-out's enables was the critical path. Two cycles late is safe: a bank's bits only
        # rise until its read-out starts, and while that runs (256 cycles) ``reading`` masks
        # the stale value of the bits it cleared.
        bank_out = Signal()
        drained = [Signal(2, name=f"drained{n}") for n in range(cfg.lanes)]
        bank_complete = Signal(2)
        complete = Signal()
        m.d.sync += [bank_complete[b].eq(Cat(d[b] for d in drained).all()) for b in range(2)]
        m.d.sync += complete.eq(bank_complete.bit_select(bank_out, 1))

        # Read-out: pixel ``p`` is (row p >> 4, x p & 15), in lane row % lanes, slot row // lanes.
        out_q = StreamFIFO(pixel_layout(cfg), depth=_OUT_DEPTH)
        m.submodules.out_queue = out_q
        wiring.connect(m, out_q.o, wiring.flipped(self.pixels))
        pixel = Signal(8)
        reading = Signal()
        pending = Signal(range(_OUT_DEPTH + 1))
        issue = reading & (out_q.level + pending < _OUT_DEPTH)
        row = pixel[4:]
        slot_of = Array(Const(r // cfg.lanes, slot_bits(cfg)) for r in range(cfg.tile))
        for lane in lanes:
            m.d.comb += [lane.rd_bank.eq(bank_out), lane.rd_slot.eq(slot_of[row]),
                         lane.rd_x.eq(pixel[:4])]
        # The lanes' state arrives rd_latency cycles after the address, then is registered.
        ahead = lanes[0].rd_latency
        if cfg.lanes == 1:
            chosen = lanes[0].rd.as_value()
        else:
            lane_of = Array(Const(r % cfg.lanes, range(cfg.lanes)) for r in range(cfg.tile))
            which = delay(m, lane_of[row], ahead, "rd_lane")
            chosen = Array(lane.rd.as_value() for lane in lanes)[which]
        read = issue
        for n in range(ahead):
            reg = Signal(name=f"rd_issue{n}")
            m.d.sync += reg.eq(read)
            read = reg
        state = Signal(lanes[0].rd.shape(), reset_less=True)
        valid1 = Signal()
        m.d.sync += [state.eq(chosen), valid1.eq(read)]
        with m.If(issue):
            m.d.sync += pixel.eq(pixel + 1)
            with m.If(pixel == 255):
                m.d.sync += reading.eq(0)
        shift = cfg.color_format.f_bits + cfg.t_format.f_bits - cfg.color_acc_format.f_bits
        bg_terms = []
        for ch, bg in enumerate(cfg.background_raw):
            product = Signal(len(state.t) + max(1, bg.bit_length()), name=f"tbg{ch}",
                             reset_less=True)
            m.d.sync += product.eq(state.t * Const(bg, max(1, bg.bit_length())))
            term = Signal(len(product) + max(0, -shift) + 1, name=f"bg{ch}", reset_less=True)
            m.d.sync += term.eq(rounded_shift(product, shift, cfg.rounding))
            bg_terms.append(term)
        state2 = delay(m, state, 2, "state")
        valid_product = Signal()
        valid2 = Signal()
        m.d.sync += [valid_product.eq(valid1), valid2.eq(valid_product)]
        result = Signal(pixel_layout(cfg), reset_less=True)
        valid3 = Signal()
        for ch in range(3):
            m.d.sync += result.color[ch].eq(saturated(state2.color[ch] + bg_terms[ch],
                                                      cfg.color_acc_format))
        m.d.sync += [result.t.eq(state2.t), result.n_contrib.eq(state2.n_contrib),
                     result.n_blended.eq(state2.n_blended), valid3.eq(valid2)]
        m.d.comb += [out_q.i.valid.eq(valid3), out_q.i.payload.eq(result)]
        m.d.sync += pending.eq(pending + issue - valid3)

        # Output side: read a complete bank out, then free it.
        for lane, d in zip(lanes, drained):
            m.d.sync += d.eq(d | lane.drained)
        with m.If(~reading & complete):
            m.d.sync += [reading.eq(1), pixel.eq(0)]
            m.d.sync += [d.bit_select(bank_out, 1).eq(0) for d in drained]
        with m.If(issue & (pixel == 255)):
            m.d.sync += [used.bit_select(bank_out, 1).eq(0), bank_out.eq(~bank_out)]
        return m

    def _front(self, m, group, lanes, queue):
        """Row generator ``group`` from ``queue`` into ``lanes``, through one row setup for IRSS:
        one (Gaussian, row) per cycle over the lanes' rows (slot by slot, lane by lane, so that
        consecutive records go to different lanes). Rows that have stopped and, for IRSS, rows
        outside the Gaussian's range (``rows_above``, ``rows_below``) are passed over without
        costing a cycle: each cycle issues the first row still wanted, and the next Gaussian
        takes the generator's place with the last one. A marker is passed on once to each lane."""
        cfg = self._config
        sb = slot_bits(cfg)
        steps = [(n, s) for s in range(cfg.slots) for n, lane in enumerate(lanes)
                 if s < len(lane_rows(cfg, lane.lane))]
        rows = [lane_rows(cfg, lanes[n].lane)[s] for n, s in steps]
        # The generator's loop (which row next, and is the Gaussian finished) runs on registers:
        # the rows still wanted for the current Gaussian are held as their lowest step
        # (``first``, the one issued next) and the others (``rest``), and are computed a cycle
        # ahead, from the Gaussian's row range as it is loaded or from the previous pair. So the
        # carry chain that finds a lowest set bit never feeds a load enable or the row setup.
        # The Gaussian to load waits in a register slice (not in the queue's memory) whose
        # pointers alone the load decision moves. Rows that stop meanwhile drop out of the pair
        # a cycle (or two: the copies of the lanes' ``row_done`` beside the generator) late; a
        # row that stopped and is issued all the same costs a record that its lane takes and
        # ends at once.
        next_up = PointerBuffer(queue.o.payload.shape())
        m.submodules[f"head{group}"] = next_up
        wiring.connect(m, queue.o, next_up.i)
        stopped = [row_done_copy(m, lane, f"stopped{group}_{n}") for n, lane in enumerate(lanes)]

        def done(bank):
            return Cat(stopped[n].bit_select(Cat(Const(s, sb), bank), 1) for n, s in steps)
        incoming = next_up.o.payload
        if cfg.dataflow == "irss":
            top = cfg.tile - 1

            def at_most(value, bound):
                # Both fields hold at most ``top``: no comparison where it would be constant.
                return Const(1) if bound >= top else value <= bound
            inside = Cat(at_most(incoming.splat.rows_above, r)
                         & at_most(incoming.splat.rows_below, top - r) for r in rows)
        else:
            inside = Const(-1, len(steps))
        # The first steps are slot 0 of every lane: where a marker goes.
        markers = Const((1 << len(lanes)) - 1, len(steps))

        head = Signal(queue.o.payload.shape(), name=f"gaussian{group}", reset_less=True)
        loaded = Signal(name=f"loaded{group}")
        first = Signal(len(steps), name=f"first{group}")
        rest = Signal(len(steps), name=f"rest{group}")
        target_ready = Signal(name=f"target_ready{group}")
        want = loaded & first.any()
        sent = want & target_ready
        free = ~want | (target_ready & ~rest.any())
        # The pair's next value for each outcome of this cycle (a new Gaussian, the current one
        # after an issue, or without one), each split into its lowest step and the rest before
        # ``free`` and ``sent`` choose: in an 8-lane GBU at 91.4 MHz the loop from ``rest``
        # through ``free`` and then the lowest-bit carry chain back into ``rest`` was the
        # critical path.
        still = ~Mux(head.marker, 0, done(head.bank))
        candidates = [Mux(incoming.marker, markers, inside & ~done(incoming.bank)),
                      rest & still, (first | rest) & still]
        splits = []
        for n, wanted in enumerate(candidates):
            lowest = Signal(len(steps), name=f"lowest{group}_{n}")
            m.d.comb += lowest.eq(wanted & (~wanted + 1))
            splits.append((lowest, wanted & ~lowest))
        (new_first, new_rest), (sent_first, sent_rest), (kept_first, kept_rest) = splits
        m.d.sync += [first.eq(Mux(free, new_first, Mux(sent, sent_first, kept_first))),
                     rest.eq(Mux(free, new_rest, Mux(sent, sent_rest, kept_rest)))]
        m.d.comb += next_up.o.ready.eq(free)
        with m.If(free):
            m.d.sync += [head.eq(incoming), loaded.eq(next_up.o.valid)]

        def select(values, width):
            # One-hot ``first`` picks a constant: OR of the steps whose value has the bit set.
            return Cat(Cat(first[k] for k, v in enumerate(values) if v >> bit & 1).any()
                       for bit in range(width))
        mb = max(1, (len(lanes) - 1).bit_length())
        member = select([n for n, _ in steps], mb)
        slot = select([s for _, s in steps], sb)
        row = select(rows, 4)

        if cfg.dataflow == "naive":
            lane, = lanes
            rec = lane.i.payload
            m.d.comb += [
                lane.i.valid.eq(want), target_ready.eq(lane.i.ready),
                rec.mx.eq(head.splat.mx), rec.my.eq(head.splat.my), rec.a.eq(head.splat.a),
                rec.b.eq(head.splat.b), rec.c.eq(head.splat.c), rec.o.eq(head.splat.o),
                rec.color.eq(head.splat.color), rec.row.eq(row), rec.slot.eq(slot),
                rec.index.eq(head.index), rec.bank.eq(head.bank), rec.marker.eq(head.marker),
            ]
            return

        from .row_setup import RowSetup
        iw = cfg.index_width
        setup = RowSetup(config=cfg, tag_width=iw + sb + 2 + mb)
        m.submodules[f"setup{group}"] = setup
        s_in = setup.i.payload
        m.d.comb += [
            setup.i.valid.eq(want), target_ready.eq(setup.i.ready),
            s_in.mx.eq(head.splat.mx), s_in.my.eq(head.splat.my), s_in.a.eq(head.splat.a),
            s_in.b.eq(head.splat.b), s_in.c.eq(head.splat.c), s_in.o.eq(head.splat.o),
            s_in.color.eq(head.splat.color), s_in.row.eq(row),
            s_in.tag.eq(Cat(head.index, slot, head.bank, head.marker, member)),
        ]
        out = setup.o.payload
        marker = out.tag[iw + sb + 1]
        to = out.tag[iw + sb + 2:]
        # Empty rows are taken from the setup and dropped: they cost the lanes nothing.
        keep = ~out.empty | marker
        queues = []
        for n, lane in enumerate(lanes):
            records = StreamFIFO(lane_record_layout(cfg), depth=cfg.record_fifo_depth)
            m.submodules[f"records{lane.lane}"] = records
            queues.append(records)
            rec = records.i.payload
            m.d.comb += [
                records.i.valid.eq(setup.o.valid & keep & (to == n)),
                rec.lo.eq(out.lo), rec.hi.eq(out.hi), rec.P.eq(out.P), rec.D.eq(out.D),
                rec.a_acc.eq(out.a_acc), rec.o.eq(out.o), rec.color.eq(out.color),
                rec.index.eq(out.tag[:iw]), rec.slot.eq(out.tag[iw:iw + sb]),
                rec.bank.eq(out.tag[iw + sb]), rec.marker.eq(marker),
            ]
            wiring.connect(m, records.o, lane.i)
        room = Array(q.i.ready for q in queues)[to]
        m.d.comb += setup.o.ready.eq(room | ~keep)
