"""Configuration of the SoC top: the host link's parameters and the size of each accelerator.

One :class:`SoCConfig` gives every block's own config (:attr:`SoCConfig.host`, ``gemm``, ``kv``,
``gbu``),
so the hardware, the address map the host reads and the tests all follow from it.
"""

import dataclasses

from ..gbu.config import GBUConfig
from ..gemm.config import GemmConfig
from ..host.config import HostConfig
from ..kv.designs import KVEngineConfig
from ..lib.config import Config, check_int


__all__ = ["SoCConfig"]

_OWNER = "SoCConfig"


@dataclasses.dataclass(frozen=True)
class SoCConfig(Config):
    """The SoC: host bridge, tensor engine, KV-cache engine and Gaussian Blending Unit on one
    bus.

    Parameters
    ----------
    clock_hz, baud, idle_timeout_us, bus_timeout_cycles, max_words
        The host link, as in :class:`~hw.host.config.HostConfig`.
    window_depth : int
        Items each stream window queues (:mod:`hw.host.stream_window`).
    gemm_rows, gemm_cols, gemm_weight_bits : int
        The :class:`~hw.gemm.engine.TensorEngine` (int8 activations, weight-stationary); 0 rows
        leaves it out.
    kv_layers : int
        Layers of the LaCache :class:`~hw.kv.cache.KVCacheEngine` (the other parameters are
        :class:`~hw.kv.designs.KVEngineConfig`'s defaults: C = 256, S0 = 4, S/O = 16/0, one
        head of 2 x 16 bits); 0 leaves it out.
    gbu_lanes : int
        Row shader lanes of the :class:`~hw.gbu.core.GaussianBlendingUnit` (IRSS, tile lists of
        up to 1023 Gaussians); 0 leaves it out.
    """
    clock_hz: int = 25_000_000
    baud: int = 1_000_000
    idle_timeout_us: int = 10_000
    bus_timeout_cycles: int = 1024
    max_words: int = 512
    window_depth: int = 16
    gemm_rows: int = 8
    gemm_cols: int = 8
    gemm_weight_bits: int = 8
    kv_layers: int = 32
    gbu_lanes: int = 1

    def __post_init__(self):
        check_int("window_depth", self.window_depth, min=3, max=4096, owner=_OWNER)
        check_int("gemm_rows", self.gemm_rows, min=0, max=64, owner=_OWNER)
        check_int("kv_layers", self.kv_layers, min=0, max=64, owner=_OWNER)
        check_int("gbu_lanes", self.gbu_lanes, min=0, max=16, owner=_OWNER)
        if not (self.gemm_rows or self.kv_layers or self.gbu_lanes):
            raise ValueError(f"{_OWNER}: no accelerator (gemm_rows, kv_layers and gbu_lanes are "
                             f"all 0)")
        # Building the blocks' configs checks the parameters passed on to them.
        try:
            self.blocks()
        except ValueError as error:
            raise ValueError(f"{_OWNER}: {error}") from None

    def blocks(self):
        """``{"host": HostConfig, "gemm": GemmConfig or None, "kv": KVEngineConfig or None,
        "gbu": GBUConfig or None}``."""
        return {"host": self.host, "gemm": self.gemm, "kv": self.kv, "gbu": self.gbu}

    @property
    def host(self):
        """The :class:`HostConfig` of the link (its demo target sizes are unused)."""
        return HostConfig(clock_hz=self.clock_hz, baud=self.baud,
                          idle_timeout_us=self.idle_timeout_us,
                          bus_timeout_cycles=self.bus_timeout_cycles, max_words=self.max_words)

    @property
    def window_bits(self):
        """Word address bits of a stream window: its status word and a block of ``max_words``."""
        return self.max_words.bit_length()

    @property
    def gemm(self):
        """The tensor engine's :class:`GemmConfig`, or None. Buffers of 512 vectors (one or two
        block RAMs each) and K up to 1024 keep the SoC small beside the other blocks."""
        if not self.gemm_rows:
            return None
        return GemmConfig(rows=self.gemm_rows, cols=self.gemm_cols,
                          weight_bits=self.gemm_weight_bits, max_k=1024, a_buffer_depth=512,
                          w_buffer_depth=512, acc_buffer_depth=256)

    @property
    def kv(self):
        """The KV-cache engine's :class:`KVEngineConfig`, or None."""
        return KVEngineConfig(layers=self.kv_layers) if self.kv_layers else None

    @property
    def gbu(self):
        """The Gaussian Blending Unit's :class:`GBUConfig`, or None. Lists of up to 1023
        Gaussians narrow its counters; a host splits a longer list over several passes."""
        return GBUConfig(lanes=self.gbu_lanes, max_gaussians=1023) if self.gbu_lanes else None
