"""What the slot tables need to know of an eviction policy in streaming decode: its window.

Both policies compact the same way once the cache is full: the ``window`` of ``B`` consecutive
logical entries starting at a ``base`` loses ``R`` of them in every class, class ``c`` keeping
the ``A`` entries at window offsets ``c .. c + A - 1``. Under LaCache that is one ladder rung
(``B``, ``A`` and ``R`` of :class:`~hw.kv.config.KVConfig`, ``R + 1`` classes); under
StreamingLLM the window is the one entry right after the sinks, dropped whole (``B = R = 1``,
``A = 0``, one class), which is a LaCache start-over at every step.
"""

import typing

from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from ..lib.component import check_config
from .config import POLICIES, KVConfig


__all__ = ["Window", "check_kv_config", "compaction_window", "compact_layout", "prefill_ports"]


class Window(typing.NamedTuple):
    """``B`` entries walked, ``A`` kept per class, ``R = B - A`` dropped."""
    B: int
    A: int
    R: int


def check_kv_config(owner, config, policies=POLICIES):
    """Check that ``config`` is a :class:`KVConfig` with one of ``policies``; return it."""
    check_config(owner, config, KVConfig)
    if config.policy not in policies:
        raise ValueError(f"{owner}.config.policy={config.policy!r} is not supported: expected "
                         + " or ".join(repr(p) for p in policies))
    return config


def compaction_window(config):
    """The :class:`Window` of one compaction under ``config.policy``."""
    if config.policy == "lacache":
        return Window(config.B, config.A, config.R)
    return Window(1, 0, 1)


def compact_layout(config):
    """``{startover, groups}``: a walk of ``groups`` consecutive windows from the cursor, or from
    ``S0`` on a start-over."""
    return data.StructLayout({"startover": 1, "groups": range(1, config.rows_per_layer + 1)})


def prefill_ports(config):
    """The ports an indexer has for prefills, beside those of streaming decode.

    ``append`` (``In(1)``)
        Pulse: a token was appended to every layer without compaction (an ``APPEND``).
    ``prefill`` (``Out(1)``)
        Tokens were appended since the last compaction: the next commit is a prefill's. Register.
    ``compact`` (``In(1)``)
        Pulse, in the cycle of the ``append`` of a prefill's last token: compact the prefill.
    ``op`` (``Out(stream.Signature(compact_layout(config)))``)
        The walks of the compaction, in order, for :attr:`SlotTable.compact
        <hw.kv.slot_table.SlotTable.compact>`.
    ``busy`` (``Out(1)``)
        From the cycle after ``compact`` until the compaction is decided and its last walk taken;
        ``length`` and the plan are then those after the compaction. Register.
    """
    return {"append": In(1), "prefill": Out(1), "compact": In(1),
            "op": Out(stream.Signature(compact_layout(config))), "busy": Out(1)}
