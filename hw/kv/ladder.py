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
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .policy import check_kv_config


__all__ = ["LadderIndexer", "plan_layout"]


def _initial_room(config):
    return config.capacity - config.sinks - config.layers


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


class LadderIndexer(wiring.Component):
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
        and ``startover`` are a couple of LUTs from them (constant comparisons).

    Raises
    ------
    TypeError, ValueError
        If ``config`` is not a LaCache :class:`KVConfig`.
    """

    def __init__(self, *, config):
        self._config = check_kv_config("LadderIndexer", config, ("lacache",))
        super().__init__({
            "advance": In(1),
            "length": Out(range(config.capacity + 2)),
            "sink": Out(1),
            "plan": Out(plan_layout(config)),
        })

    @property
    def config(self):
        """The :class:`KVConfig` the indexer is built from."""
        return self._config

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        A, R, S0, cap = cfg.A, cfg.R, cfg.sinks, cfg.capacity
        room0 = _initial_room(cfg)
        free0_0 = (room0 // A) * R
        layout = plan_layout(cfg)

        compensated = Signal()
        cursor = Signal(layout["cursor"].shape, init=S0)
        # ``room`` and ``free0`` follow the cursor (see the module docstring): registers, so that
        # no division by A is ever computed.
        room = Signal(layout["room"].shape, init=room0)
        free0 = Signal(layout["free0"].shape, init=free0_0)

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
                ]
        return m
