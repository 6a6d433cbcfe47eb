"""Configuration of the KV-cache compaction datapath (DESIGN.md section 7.4).

Standard library only (DESIGN.md section 2): ``golden/`` and ``sw/`` read this module.

Two eviction policies share one budget ``budget`` (C):

``lacache``
    LaCache as released (GATECH-EIC/LaCache, ``kv_cache.py``): a ladder across layers with
    ``sinks`` (S0) attention sinks, ladder span S and overlap O. On its first compaction the
    released code raises its budget by ``R // 2`` ("compensation to match average size"), so
    the cache actually holds up to :attr:`KVConfig.capacity` = C + R // 2 entries per layer.
``streaming``
    StreamingLLM: keep the ``sinks`` first entries and the last ``recent`` ones. ``recent`` is
    derived as ``budget - sinks`` rather than set, so that one parameter sizes the cache under
    both policies and the two cannot contradict each other.
"""

import dataclasses
import math
import typing

from hw.lib.config import Config, check_choice, check_int


__all__ = ["KVConfig", "POLICIES"]


POLICIES = ("lacache", "streaming")


def _ceil_div(a, b):
    return -(-a // b)


@dataclasses.dataclass(frozen=True)
class KVConfig(Config):
    """KV-cache geometry and eviction policy.

    Parameters
    ----------
    layers : int
        Decoder layers L; each holds its own cache.
    kv_heads : int
        Key/value heads per layer; every head of a layer keeps the same entries.
    head_dim : int
        Elements in one head's key (or value) vector.
    elem_bits : int
        Width of one stored element.
    budget : int
        Cache budget C, in entries per layer, as given to the released code.
    sinks : int
        Attention sinks S0: the first entries, never evicted.
    span : int
        LaCache ladder span S, in layers.
    overlap : int
        LaCache ladder overlap O, in layers; ``0 <= overlap < span``.
    policy : {"lacache", "streaming"}
        Eviction policy.
    max_prefill : int
        Most tokens a prefill (tokens appended to every layer, then one compaction) adds to a
        full cache: each layer keeps ``capacity + max_prefill`` physical rows. 1 is streaming
        decode only, where the incoming token is the one row beyond the capacity.
    """
    layers: int = 32
    kv_heads: int = 8
    head_dim: int = 128
    elem_bits: int = 16
    budget: int = 256
    sinks: int = 4
    span: int = 16
    overlap: int = 0
    policy: typing.Literal[POLICIES] = "lacache"
    max_prefill: int = 1

    def __post_init__(self):
        owner = "KVConfig"
        check_int("layers", self.layers, min=1, max=4096, owner=owner)
        check_int("kv_heads", self.kv_heads, min=1, max=4096, owner=owner)
        check_int("head_dim", self.head_dim, min=1, max=65536, owner=owner)
        check_int("elem_bits", self.elem_bits, min=1, max=64, owner=owner)
        check_int("budget", self.budget, min=1, max=1 << 24, owner=owner)
        check_int("sinks", self.sinks, min=0, max=self.budget - 1, owner=owner)
        check_int("span", self.span, min=1, max=4096, owner=owner)
        check_int("overlap", self.overlap, min=0, max=self.span - 1, owner=owner)
        check_choice("policy", self.policy, POLICIES, owner=owner)
        check_int("max_prefill", self.max_prefill, min=1, max=1 << 24, owner=owner)
        if self.policy == "lacache":
            self._check_ladder(owner)

    def _check_ladder(self, owner):
        if self.R < 1:
            raise ValueError(
                f"{owner}.layers={self.layers} is too few for span={self.span}, "
                f"overlap={self.overlap}: expected layers >= {self.min_layers}. LaCache needs "
                f"R = B - A >= 1 (here B={self.B}, A={self.A}, R={self.R}): R is how many "
                f"entries each ladder group of B frees, so with R = 0 nothing is ever evicted "
                f"and the released code divides by R")
        if self.budget < self.min_budget:
            raise ValueError(
                f"{owner}.budget={self.budget} is too small: expected >= {self.min_budget} "
                f"(= sinks + layers + A - R // 2) for layers={self.layers}, sinks={self.sinks}, "
                f"span={self.span}, overlap={self.overlap}. The first compaction must have room "
                f"= budget + R // 2 - sinks - layers >= A for one ladder group; with less, the "
                f"released code frees nothing and divides by zero at its first start-over")

    # LaCache ladder (DESIGN.md 7.4) --------------------------------------------------------

    @property
    def B(self):
        """Ladder group size: consecutive entries one ladder rung covers across all layers."""
        return 1 + _ceil_div(self.layers - self.span, self.span - self.overlap)

    @property
    def A(self):
        """Entries of a group each layer keeps."""
        return min(_ceil_div(self.span, self.span - self.overlap), self.B)

    @property
    def R(self):
        """Entries of a group each layer drops: ``B - A``."""
        return self.B - self.A

    @property
    def min_layers(self):
        """Fewest layers for which ``span`` and ``overlap`` give ``R >= 1``.

        ``R >= 1`` means ``ceil((L - S) / (S - O)) >= ceil(S / (S - O))``, that is
        ``L - S > (S - O) * (ceil(S / (S - O)) - 1)``.
        """
        step = self.span - self.overlap
        return self.span + step * (_ceil_div(self.span, step) - 1) + 1

    @property
    def min_budget(self):
        """Smallest LaCache budget: ``sinks + layers + A - R // 2``."""
        return self.sinks + self.layers + self.A - self.R // 2

    @property
    def classes(self):
        """Distinct per-layer index lists: layer ``i`` is in class ``i % (R + 1)`` under
        LaCache, in streaming decode and after prefills compacted in clean mode (whose
        start-overs all have ``T = 1``; the released code's ``T >= 2`` start-overs would give
        ``(i % (R + 1), i % (R2 + 1))`` classes, up to ``layers``); StreamingLLM treats every
        layer alike."""
        return self.R + 1 if self.policy == "lacache" else 1

    # Sizes -----------------------------------------------------------------------------------

    @property
    def recent(self):
        """Most recent entries StreamingLLM keeps: ``budget - sinks``."""
        return self.budget - self.sinks

    @property
    def capacity(self):
        """Most entries a layer holds after a compaction (LaCache's compensated budget)."""
        return self.budget + self.R // 2 if self.policy == "lacache" else self.budget

    @property
    def rows_per_layer(self):
        """Physical rows per layer and head for K (and as many for V): ``capacity +
        max_prefill``.

        Tokens are written before the policy decides what to drop, so a layer transiently holds
        ``capacity + 1`` entries in streaming decode and up to ``capacity + max_prefill`` in a
        prefill.
        """
        return self.capacity + self.max_prefill

    @property
    def slot_bits(self):
        """Width of one slot-table entry: a physical row number of a layer."""
        return max(1, (self.rows_per_layer - 1).bit_length())

    @property
    def slot_table_bits(self):
        """Total slot-table storage: one logical-to-physical table per layer class."""
        return self.classes * self.rows_per_layer * self.slot_bits

    @property
    def kv_rows(self):
        """Stored vectors of ``head_dim`` elements: K and V, every layer and head."""
        return 2 * self.layers * self.kv_heads * self.rows_per_layer

    @property
    def kv_bits(self):
        """KV storage in bits."""
        return self.kv_rows * self.head_dim * self.elem_bits

    @property
    def kv_bytes(self):
        """KV storage in bytes, rounded up."""
        return math.ceil(self.kv_bits / 8)
