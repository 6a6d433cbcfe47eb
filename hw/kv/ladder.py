"""LaCache's scalar decisions for streaming decode, one token at a time, in small arithmetic.

:class:`LadderIndexer` answers, for the next token, what :meth:`golden.lacache.LaCache.plan`
answers for the cache length ``N`` after that token's append. In streaming decode (one token per
step) the released code's quotients only take a few values, so no divider is needed:

* ``C`` is the compensated budget ``C' = budget + R // 2`` in every plan (the first call raises it
  before computing anything), so ``need = N - C'`` and ``room = C' - cursor - L`` are subtractions.
* The length never exceeds ``C' + 1``, so ``need <= 1``; the only call with ``need < 1`` is the
  first (compensating) one when ``R >= 2``, where ``need = 1 - R // 2 > -R``. Hence
  ``ceil(need / R) * A`` is ``A`` when ``need == 1`` and 0 otherwise.
* ``room`` only ever falls by ``A`` (the cursor moves by ``A``) or restarts at one constant after a
  start-over, so ``free0 = (room // A) * R`` falls by ``R`` in step, restarting at a constant:
  both are kept as registers.
* A start-over needs ``need > free0``, i.e. ``need == 1`` and ``room < A``; then ``rem = 1``,
  ``T = 1``, ``B2 = B``, ``R2 = R``, ``inc2 = A`` and the ladder restarts at ``S0`` with one group.

So a compaction (``drop``) removes, in every class ``c``, the ``R`` entries of the window
``[base, base + B)`` other than ``[base + c, base + c + A)``, where ``base`` is the cursor, or
``S0`` on a start-over; afterwards the cursor is ``base + A``.

A prefill (tokens appended with ``append``, then ``compact``) is compacted as
:meth:`golden.lacache.LaCache.step` does in clean mode (``exact=False``), pass by pass. A pass at
length ``N > C'`` without a start-over (``need <= free0``) walks ``ceil(need / R)`` windows from
the cursor and is the last. A start-over pass walks the ``room // A`` windows left from the
cursor (its stage 1, when there are any), then ``n2 = ceil(rem / R)`` windows from ``S0`` with
``rem = min(need - free0, F1)``, so that ``T = 1``, ``B2 = B`` and ``R2 = R``: the classes stay
the ``R + 1`` of streaming decode. The quotients come from a sequential division by repeated
subtraction, which also steps the cursor, ``room``, ``room // A``, ``free0`` and the length one
window at a time: one cycle per window, against the slot tables' ``2 * B`` per window walked.
Exact mode's ``T >= 2`` start-overs (duplicate or unsorted indices, ``R2 + 1`` classes) are not
a list of rows and are not offered.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, enum
from amaranth.lib.wiring import In, Out

from ..lib.component import ConfiguredComponent
from .policy import check_kv_config, prefill_ports


__all__ = ["LadderIndexer", "plan_layout", "SETTLE_CYCLES"]


def _initial_room(config):
    return config.capacity - config.sinks - config.layers


class _Seq(enum.Enum):
    # The prefill compaction: let the pass's operands settle, decide the pass, walk stage 1,
    # divide, walk.
    IDLE = 0
    SETTLE = 1
    PASS = 2
    STAGE1 = 3
    COUNT = 4
    WALK = 5


#: Cycles from a change of the length or the ladder state to a pass decided on it: the pass's
#: operands are a pipeline of registers (``need``, then ``need - free0``, then its clamp to
#: ``F1``), away from the decode path's timing.
SETTLE_CYCLES = 3


def plan_layout(config):
    """:class:`amaranth.lib.data.StructLayout` of one plan (fields as in
    :class:`golden.lacache.Compaction`, plus ``active``, ``drop`` and ``base``)."""
    cap, A, R = config.capacity, config.A, config.R
    room0 = _initial_room(config)
    return data.StructLayout({
        "active": 1,                            # N > C: the policy is called (plan not None)
        "need": range(1 - R // 2 - 1, 2),       # N - C', signed
        "room": range(room0 + 1),
        "free0": range((room0 // A) * R + 1),
        "startover": 1,
        "inc": range(max(A, room0) + 1),
        "drop": 1,                              # a window of B entries loses R of them
        "cursor": range(cap + 1),
        "base": range(cap + 1),                 # the window's first logical index
        "next_cursor": range(cap + 1),
    })


class LadderIndexer(ConfiguredComponent):
    """LaCache plan of the next streaming-decode step, and the ladder state it advances.

    Parameters
    ----------
    config : KVConfig
        A LaCache configuration (``policy="lacache"``).

    Interface attributes
    --------------------
    advance : ``In(1)``
        Pulse for one cycle when the token is appended to every layer; the state moves to the
        plan shown in that cycle at the next edge.
    length : ``Out(range(capacity + 2))``
        Entries every layer holds (the cache length after the last compaction). Register.
    sink : ``Out(1)``
        The next token is logical ``S0 - 1``, the last sink (never when ``S0 = 0``).
    plan : ``Out(plan_layout(config))``
        The plan for the cache length ``length + 1``, i.e. what ``LaCache.plan(length + 1)``
        gives (``active`` low where it gives ``None``; the other fields then carry no meaning).
        Combinational from registers only, so it is valid in every cycle; ``active``, ``drop``
        and ``startover`` are a couple of LUTs from them (constant comparisons). Meaningless
        while ``prefill``.
    append, prefill, compact, op, busy
        The prefill ports of :func:`~hw.kv.policy.prefill_ports`.

    Raises
    ------
    TypeError, ValueError
        If ``config`` is not a LaCache :class:`KVConfig`.
    """

    def __init__(self, *, config):
        check_kv_config("LadderIndexer", config, ("lacache",))
        super().__init__(config, {
            "advance": In(1),
            "length": Out(range(config.rows_per_layer + 1)),
            "sink": Out(1),
            "plan": Out(plan_layout(config)),
            **prefill_ports(config),
        })


    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        A, R, S0, cap = cfg.A, cfg.R, cfg.sinks, cfg.capacity
        room0 = _initial_room(cfg)
        rungs0 = room0 // A
        free0_0 = rungs0 * R
        layout = plan_layout(cfg)

        compensated = Signal()
        cursor = Signal(layout["cursor"].shape, init=S0)
        # ``room`` and ``free0`` follow the cursor (see the module docstring): registers, so that
        # no division by A is ever computed.
        room = Signal(layout["room"].shape, init=room0)
        free0 = Signal(layout["free0"].shape, init=free0_0)
        rungs = Signal(range(rungs0 + 1), init=rungs0)      # room // A

        length = self.length
        n_next = length + 1
        plan = self.plan
        # In streaming decode ``need = length + 1 - C' <= 1`` and ``free0 >= 0`` (module
        # docstring), so ``need == 1`` is ``length == C'``, which also implies ``active``, and a
        # start-over is a drop with ``free0 == 0``: comparisons with constants, no adder.
        m.d.comb += [
            self.sink.eq(length == S0 - 1 if S0 else 0),
            plan.active.eq(Mux(compensated, length >= cap, length >= cfg.budget)),
            plan.drop.eq(length == cap),
            plan.startover.eq(plan.drop & (free0 == 0)),
            plan.need.eq(n_next - cap),
            plan.room.eq(room),
            plan.free0.eq(free0),
            plan.cursor.eq(cursor),
            plan.inc.eq(Mux(plan.startover, room, Mux(plan.drop, A, 0))),
            plan.base.eq(Mux(plan.startover, S0, cursor)),
            plan.next_cursor.eq(Mux(plan.startover, S0 + A, cursor + plan.inc)),
        ]

        with m.If(self.advance):
            m.d.sync += self.length.eq(n_next)
            with m.If(plan.active):
                m.d.sync += compensated.eq(1)
            with m.If(plan.drop):
                # A start-over restarts the ladder one group past S0: room0 - A, one rung less.
                m.d.sync += [
                    self.length.eq(length + 1 - R),
                    cursor.eq(Mux(plan.startover, S0 + A, cursor + A)),
                    room.eq(Mux(plan.startover, room0 - A, room - A)),
                    free0.eq(Mux(plan.startover, free0_0 - R, free0 - R)),
                    rungs.eq(Mux(plan.startover, rungs0 - 1, rungs - 1)),
                ]

        # Prefill compaction (module docstring).
        rows = cfg.rows_per_layer
        seq = Signal(_Seq)
        settle = Signal(range(SETTLE_CYCLES))
        left = Signal(range(rows + 1))      # entries still to free in this pass's last walk
        groups = Signal(range(rows + 1))
        startover = Signal()
        # The pass's operands, as registers: ``over`` (the policy is called), ``within``
        # (``N <= C'``), ``need`` and then whether it fits ``free0``, and ``rem``.
        over, within, fits = Signal(), Signal(), Signal()
        need = Signal(range(rows + 1))
        beyond = Signal(range(rows + 1))
        rem = Signal(range(free0_0 + 1))
        m.d.sync += [over.eq(Mux(compensated, length > cap, length > cfg.budget)),
                     within.eq(length <= cap), need.eq(length - cap), fits.eq(need <= free0),
                     beyond.eq(need - free0), rem.eq(Mux(beyond > free0_0, free0_0, beyond))]
        m.d.comb += [self.op.payload.startover.eq(startover), self.op.payload.groups.eq(groups)]

        def restart():
            # The ladder from S0, where a start-over's stage 2 begins.
            m.d.sync += [cursor.eq(S0), room.eq(room0), rungs.eq(rungs0), free0.eq(free0_0)]

        def settle_then_pass():
            m.d.sync += [seq.eq(_Seq.SETTLE), settle.eq(SETTLE_CYCLES - 1)]

        with m.If(self.append):
            m.d.sync += [self.length.eq(n_next), self.prefill.eq(1)]
        with m.If(self.compact):
            settle_then_pass()
            m.d.sync += self.busy.eq(1)
        with m.If(seq == _Seq.SETTLE):
            m.d.sync += settle.eq(settle - 1)
            with m.If(settle == 0):
                m.d.sync += seq.eq(_Seq.PASS)
        with m.Elif(seq == _Seq.PASS):
            m.d.sync += [groups.eq(0), startover.eq(0)]
            with m.If(~over | within):
                m.d.sync += [seq.eq(_Seq.IDLE), self.busy.eq(0), self.prefill.eq(0)]
                with m.If(over):
                    m.d.sync += compensated.eq(1)
            with m.Elif(fits):
                m.d.sync += [compensated.eq(1), left.eq(need), seq.eq(_Seq.COUNT)]
            with m.Else():
                m.d.sync += [compensated.eq(1), startover.eq(1), left.eq(rem)]
                with m.If(rungs != 0):
                    m.d.sync += seq.eq(_Seq.STAGE1)
                with m.Else():
                    restart()
                    m.d.sync += seq.eq(_Seq.COUNT)
        with m.Elif(seq == _Seq.STAGE1):
            m.d.comb += [self.op.valid.eq(1), self.op.payload.startover.eq(0),
                         self.op.payload.groups.eq(rungs)]
            with m.If(self.op.ready):
                restart()
                m.d.sync += [self.length.eq(length - free0), seq.eq(_Seq.COUNT)]
        with m.Elif(seq == _Seq.COUNT):
            m.d.sync += [left.eq(left - R), groups.eq(groups + 1), self.length.eq(length - R),
                         cursor.eq(cursor + A), room.eq(room - A), rungs.eq(rungs - 1),
                         free0.eq(free0 - R)]
            with m.If(left <= R):
                m.d.sync += seq.eq(_Seq.WALK)
        with m.Elif(seq == _Seq.WALK):
            m.d.comb += self.op.valid.eq(1)
            with m.If(self.op.ready):
                settle_then_pass()
        return m
