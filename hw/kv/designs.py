"""Registers the KV-cache engine as the buildable design ``kv-lacache`` (``--param
policy=streaming`` builds it with StreamingLLM instead of the LaCache ladder).

The engine's storage is ``layers * 2**slot_bits`` rows of ``2 * kv_heads * head_dim * elem_bits``
bits; at :class:`KVConfig`'s model-sized defaults (8 heads of 128) that is hundreds of Mbit, far
beyond any ECP5. The design therefore builds from :class:`KVEngineConfig`, the same parameters
with a small row (one head of 2 elements of 16 bits: 64 bits per K/V row) by default, so that the
32-layer, C = 256 ladder fits an 85F: 32 * 512 rows * 64 bits = 1 Mbit of EBR.
"""

import dataclasses

from ..registry import Design, register
from .cache import READ_HOLD, READ_LATENCY, KVCacheEngine
from .config import KVConfig
from .policy import compaction_window
from .slot_table import commit_cycles as table_commit_cycles


__all__ = ["KVEngineConfig", "commit_cycles", "update_cycles_per_token", "readout_cycles",
           "peak_throughput"]


@dataclasses.dataclass(frozen=True)
class KVEngineConfig(KVConfig):
    """:class:`KVConfig` with a row small enough for an FPGA build by default."""
    kv_heads: int = 1
    head_dim: int = 2


def commit_cycles(config, *, drop):
    """Cycles a ``COMMIT`` holds the command stream: one to hand it to the slot tables, then
    theirs (:func:`hw.kv.slot_table.commit_cycles`): 3, or ``2 * B + 9`` when it compacts
    (``B = 1`` under StreamingLLM), whatever the budget."""
    return 1 + table_commit_cycles(config, drop=drop)


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
