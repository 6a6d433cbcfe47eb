# amaranth: UnusedElaboratable=no
# (The cores are made in SoC.__init__ for their signatures, which the address map is built
# from; a SoC asked only for its map is never elaborated, and neither are they.)
"""The SoC top: the host link on the UART pins, and every accelerator of a :class:`SoCConfig` on
its bus through stream windows (:mod:`hw.soc.accelerator_bus`)."""

import binascii
import json

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..gbu.core import GaussianBlendingUnit
from ..gemm.engine import TensorEngine
from ..host.bridge import add_host_link
from ..host.bus import BusDecoder, address_map_json
from ..host.config import allocate_regions
from ..kv.cache import KVCacheEngine
from ..lib.component import ConfiguredComponent, check_config
from .accelerator_bus import AcceleratorBus, SignalWords
from .config import SoCConfig


__all__ = ["INFO_MAGIC", "SoC"]

#: Word 0 of region ``info``: "AFG1" read as a little-endian word.
INFO_MAGIC = int.from_bytes(b"AFG1", "little")


class SoC(ConfiguredComponent):
    """Host bridge and accelerators on one bus.

    Parameters
    ----------
    config : SoCConfig

    Interface attributes
    --------------------
    rx : ``In(1)``
        Serial input from the host (1 when idle).
    tx : ``Out(1)``
        Serial output to the host (a register, 1 when idle).

    The bus holds region ``info`` (word 0: :data:`INFO_MAGIC`; word 1: the CRC-32 of the rest
    of the address map, so a host can check that its map is this bitstream's), then the regions
    of each accelerator (``gemm_*``: :class:`~hw.gemm.engine.TensorEngine`, ``kv_*``:
    :class:`~hw.kv.cache.KVCacheEngine`, ``gbu_*``: :class:`~hw.gbu.core.GaussianBlendingUnit`),
    as :meth:`address_map` lists them.
    """

    def __init__(self, *, config):
        check_config("SoC", config, SoCConfig)
        cores = {"gemm": config.gemm and TensorEngine(config=config.gemm),
                 "kv": config.kv and KVCacheEngine(config=config.kv),
                 "gbu": config.gbu and GaussianBlendingUnit(config=config.gbu)}
        self._accelerators = [AcceleratorBus(name, core, window_bits=config.window_bits,
                                             depth=config.window_depth)
                              for name, core in cores.items() if core is not None]
        self._regions = (("info", 2),
                         *(r for acc in self._accelerators for r in acc.regions))
        super().__init__(config, {"rx": In(1, init=1), "tx": Out(1, init=1)})


    @property
    def accelerators(self):
        """The :class:`AcceleratorBus` of each accelerator, in address order."""
        return tuple(self._accelerators)

    @staticmethod
    def address_map_of(config):
        """:meth:`address_map` of the SoC built from ``config``, without keeping it."""
        return SoC(config=config).address_map()

    def address_map(self):
        """The address map as JSON-ready data: regions (word and byte addresses), each
        accelerator's streams and signals, the config, and ``info``'s words."""
        described = address_map_json(self._regions)
        described["accelerators"] = {acc.name: acc.describe() for acc in self._accelerators}
        described["config"] = self._config.to_dict()
        checksum = binascii.crc32(json.dumps(described, sort_keys=True).encode())
        described["info"] = {"magic": INFO_MAGIC, "map_crc32": checksum}
        return described

    def elaborate(self, platform):
        m = Module()
        host = self._config.host
        protocol = add_host_link(m, host, allocate_regions(self._regions), self.rx, self.tx)
        m.submodules.decoder = decoder = BusDecoder(self._regions)
        wiring.connect(m, protocol.bus, decoder.bus)
        info = self.address_map()["info"]
        m.submodules.info = info_words = SignalWords({"magic": 32, "map_crc32": 32})
        wiring.connect(m, decoder.info, info_words.bus)
        m.d.comb += [info_words.magic.eq(info["magic"]),
                     info_words.map_crc32.eq(info["map_crc32"])]
        for accelerator in self._accelerators:
            accelerator.elaborate_into(m, decoder)
        return m
