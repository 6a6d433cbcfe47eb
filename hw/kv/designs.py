"""Registers the KV-cache engine as the buildable design ``kv-lacache`` (``--param
policy=streaming`` builds it with StreamingLLM instead of the LaCache ladder).

The engine's storage is ``layers * 2**slot_bits`` rows of ``2 * kv_heads * head_dim * elem_bits``
bits; at :class:`KVConfig`'s model-sized defaults (8 heads of 128) that is hundreds of Mbit, far
beyond any ECP5. The design therefore builds from :class:`KVEngineConfig`, the same parameters
with a small row (one head of 2 elements of 16 bits: 64 bits per K/V row) by default, so that the
32-layer, C = 256 ladder fits an 85F: 32 * 512 rows * 64 bits = 1 Mbit of EBR.

Prefills (``APPEND`` s, then one compacting ``COMMIT``) are always built in; ``max_prefill``
sizes the rows they may fill (``capacity + max_prefill`` per layer). Up to the next power of two
of rows that costs no storage: at C = 256, S/O = 16/0, ``max_prefill=255`` keeps 512 rows per
layer.
"""

import dataclasses

from ..registry import Design, register
from .cache import READ_HOLD, READ_LATENCY, KVCacheEngine
from .config import KVConfig
from .ladder import SETTLE_CYCLES
from .policy import compaction_window
from .slot_table import commit_cycles as table_commit_cycles
from .slot_table import walk_cycles


__all__ = ["KVEngineConfig", "commit_cycles", "prefill_commit_cycles", "update_cycles_per_token",
           "readout_cycles", "peak_throughput"]


@dataclasses.dataclass(frozen=True)
class KVEngineConfig(KVConfig):
    """:class:`KVConfig` with a row small enough for an FPGA build by default, and prefills of up
    to 240 tokens beyond the budget: at C = 256 every ladder of DESIGN.md 7.4 then keeps 512 rows
    per layer, as streaming decode alone does (capacity + 240 <= 512 while R <= 32)."""
    kv_heads: int = 1
    head_dim: int = 2
    max_prefill: int = 240


def commit_cycles(config, *, drop):
    """Cycles a ``COMMIT`` holds the command stream: one to hand it to the slot tables, then
    theirs (:func:`hw.kv.slot_table.commit_cycles`): 3, or ``2 * B + 9`` when it compacts
    (``B = 1`` under StreamingLLM), whatever the budget."""
    return 1 + table_commit_cycles(config, drop=drop)


def prefill_commit_cycles(config, passes):
    """Cycles the ``COMMIT`` closing a prefill holds the command stream, from the cycle it is
    taken to the cycle the next command can be.

    ``passes`` lists the compaction's passes as ``(stage1, windows)``: the windows walked from
    the cursor before a start-over (0 for none), then those walked from the cursor, or from
    ``S0`` on a start-over (for :class:`golden.lacache.Compaction` ``p``: ``(p.n, p.n2)`` if
    ``p.startover`` else ``(0, p.n)``; passes that free nothing left out). Under StreamingLLM
    there is at most one pass, ``(0, N - budget)``. Without passes: 5 cycles.

    The indexer decides a pass :data:`~hw.kv.ladder.SETTLE_CYCLES` after the state it
    depends on changed, divides in one cycle per window of the pass's last walk, and hands each
    walk over once the slot tables are idle; a walk of ``g`` windows keeps
    them :func:`hw.kv.slot_table.walk_cycles` ``= 2 * (B * g + 2) + 4`` busy. Once the indexer
    is done and the last walk too, the next token's row is allocated (2 cycles). So the
    compaction is about ``2 * B / R`` cycles per entry freed: ``2 * B * (N - N') / R`` for a
    prefill from ``N`` entries down to ``N'``, at most ``N' + max_prefill - capacity`` of them.
    """
    streaming = config.policy == "streaming"
    settle = 0 if streaming else SETTLE_CYCLES
    # The cycle the indexer decides a pass, and the first the tables take a walk in.
    decide, free = 2 + settle, 3
    for stage1, windows in passes:
        start = decide + 1
        if stage1:
            start = max(start, free)
            free = start + walk_cycles(config, stage1)
            start += 1
        taken = max(start if streaming else start + windows, free)
        free = taken + walk_cycles(config, windows)
        # StreamingLLM's indexer is done as its walk is taken; LaCache's decides once more.
        decide = taken + (0 if streaming else 1 + settle)
    return max(decide + 1, free) + 2


def update_cycles_per_token(config):
    """Steady-state cycles to store one token: one ``WRITE`` per layer and a ``COMMIT``, with a
    compaction every ``R`` tokens once the cache is full (every token under StreamingLLM).
    Independent of the budget."""
    R = compaction_window(config).R
    return (config.layers + commit_cycles(config, drop=False)
            + (commit_cycles(config, drop=True) - commit_cycles(config, drop=False)) / R)


def readout_cycles(config, rows):
    """Cycles of a ``READ`` yielding ``rows`` rows without stalls, from the cycle it is
    offered on ``cmd`` to the cycle of the last row on ``rsp``: :data:`READ_LATENCY` for the
    first row, then one per cycle."""
    return rows - 1 + READ_LATENCY


def peak_throughput(config, fmax_hz):
    """Tokens/s and read-out rows/s at ``fmax_hz`` from the cycle model (no stalls); reads of
    successive layers overlap, each holding the command stream ``rows + READ_HOLD`` cycles."""
    full = config.capacity + 1
    return {
        "tokens/s (cache update)": fmax_hz / update_cycles_per_token(config),
        "tokens/s (update + read-out of every layer)":
            fmax_hz / (update_cycles_per_token(config) + config.layers * (full + READ_HOLD)),
        "KV rows/s (read-out)": fmax_hz,
    }


register(Design(
    name="kv-lacache",
    summary="LaCache (or StreamingLLM, policy=streaming) KV cache: rows written once, "
            "compaction in linked slot tables",
    config_cls=KVEngineConfig,
    make_core=lambda config: KVCacheEngine(config=config),
    peak_throughput=peak_throughput,
))
