"""StreamingLLM's decisions for streaming decode, one token at a time: a length counter.

Once a layer holds ``budget`` entries, every appended token pushes the oldest non-sink entry
(logical ``S0``) out: :meth:`golden.lacache.StreamingLLM.step` keeps ``[0, S0)`` and the last
``budget - S0`` of ``budget + 1``. In the slot tables' terms (:mod:`hw.kv.policy`) that is a
window of one entry at ``S0``, dropped whole, at every step. A prefill that leaves ``N > budget``
entries drops the ``N - budget`` entries after the sinks: one walk of that many windows.
"""

from amaranth.hdl import Module
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from ..lib.component import ConfiguredComponent
from .policy import check_kv_config, prefill_ports


__all__ = ["StreamingIndexer", "streaming_plan_layout"]


def streaming_plan_layout():
    """``{active, drop, startover}``, the fields a plan of
    :func:`~hw.kv.ladder.plan_layout` shares with StreamingLLM's."""
    return data.StructLayout({"active": 1, "drop": 1, "startover": 1})


class StreamingIndexer(ConfiguredComponent):
    """StreamingLLM plan of the next streaming-decode step; same ports as
    :class:`~hw.kv.ladder.LadderIndexer`, with a reduced plan.

    Parameters
    ----------
    config : KVConfig
        A StreamingLLM configuration (``policy="streaming"``).

    Interface attributes
    --------------------
    advance : ``In(1)``
        Pulse for one cycle when the token is appended to every layer.
    length : ``Out(range(capacity + 2))``
        Entries every layer holds after the last compaction. Register.
    sink : ``Out(1)``
        The next token is logical ``S0 - 1``, the last sink (never when ``S0 = 0``).
    plan : ``Out(streaming_plan_layout())``
        For the cache length ``length + 1``: ``active`` and ``drop`` where it exceeds the
        budget (``StreamingLLM.step`` does not answer ``None``); ``startover`` always, since the
        dropped entry is always the one after the sinks. Meaningless while ``prefill``.
    append, prefill, compact, op, busy
        The prefill ports of :func:`~hw.kv.policy.prefill_ports`.

    Raises
    ------
    TypeError, ValueError
        If ``config`` is not a StreamingLLM :class:`KVConfig`.
    """

    def __init__(self, *, config):
        check_kv_config("StreamingIndexer", config, ("streaming",))
        super().__init__(config, {
            "advance": In(1),
            "length": Out(range(config.rows_per_layer + 1)),
            "sink": Out(1),
            "plan": Out(streaming_plan_layout()),
            **prefill_ports(config),
        })


    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        length = self.length
        m.d.comb += [
            self.sink.eq(length == cfg.sinks - 1 if cfg.sinks else 0),
            self.plan.active.eq(length == cfg.budget),
            self.plan.drop.eq(self.plan.active),
            self.plan.startover.eq(1),
        ]
        with m.If(self.advance & ~self.plan.drop):
            m.d.sync += length.eq(length + 1)

        over = length > cfg.budget
        m.d.comb += [self.op.payload.startover.eq(1),
                     self.op.payload.groups.eq(length - cfg.budget),
                     self.op.valid.eq(self.busy & over)]
        with m.If(self.append):
            m.d.sync += [length.eq(length + 1), self.prefill.eq(1)]
        with m.If(self.compact):
            m.d.sync += self.busy.eq(1)
        with m.If(self.busy & (~over | self.op.ready)):
            m.d.sync += [self.busy.eq(0), self.prefill.eq(0)]
            with m.If(over):
                m.d.sync += length.eq(cfg.budget)
        return m
