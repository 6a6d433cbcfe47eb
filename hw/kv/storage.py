"""On-chip K/V rows of every layer, addressed by layer and physical row (slot)."""

from amaranth.hdl import Cat, Module, unsigned
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from ..lib.block_ram import RegisteredRAM
from ..lib.component import ConfiguredComponent, check_config
from .config import KVConfig


__all__ = ["KVStorage", "row_layout"]


def row_layout(config):
    """One token's K and V of one layer, all heads: ``{k, v}``, each ``kv_heads * head_dim``
    elements of ``elem_bits``, element ``e`` of head ``h`` at element index
    ``h * head_dim + e`` (little end first)."""
    bits = config.kv_heads * config.head_dim * config.elem_bits
    return data.StructLayout({"k": unsigned(bits), "v": unsigned(bits)})


class KVStorage(ConfiguredComponent):
    """One memory of ``layers * 2**slot_bits`` K/V rows; a row is written once and never moved.

    The address is ``{layer, slot}`` concatenated, so no multiplier is needed; rows past
    ``rows_per_layer`` in each layer's power-of-two stride are unused. Both ports are registered
    twice on their way in (here, then in :class:`~hw.lib.block_ram.RegisteredRAM`) and the read
    data once on its way out: the block RAMs are spread across the die, and one register
    cannot be near all of them, so a route to or from them gets a cycle of its own.

    Parameters
    ----------
    config : KVConfig

    Interface attributes
    --------------------
    w_en, w_layer, w_slot, w_row : ``In``
        Write ``w_row`` (:func:`row_layout`) to row ``w_slot`` of layer ``w_layer``; the row is
        stored at the third edge after the cycle where ``w_en`` is high.
    r_en, r_layer, r_slot : ``In``
        Read row ``r_slot`` of layer ``r_layer`` where ``r_en`` is high. The read sees every
        write whose ``w_en`` was high at least 2 cycles before.
    r_row : ``Out(row_layout(config))``
        The row read, :attr:`latency` cycles after ``r_en``.
    """

    def __init__(self, *, config):
        check_config("KVStorage", config, KVConfig)
        layer = unsigned(max(1, (config.layers - 1).bit_length()))
        slot = unsigned(config.slot_bits)
        super().__init__(config, {
            "w_en": In(1), "w_layer": In(layer), "w_slot": In(slot),
            "w_row": In(row_layout(config)),
            "r_en": In(1), "r_layer": In(layer), "r_slot": In(slot),
            "r_row": Out(row_layout(config)),
        })


    @property
    def depth(self):
        """Rows of the memory: ``layers * 2**slot_bits``."""
        return self._config.layers << self._config.slot_bits

    @property
    def latency(self):
        """Cycles from ``r_en`` to ``r_row``: the input register, the block RAM's 2 and the
        output register."""
        return 4

    def elaborate(self, platform):
        m = Module()
        m.submodules.rows = rows = RegisteredRAM(width=row_layout(self._config).size,
                                                 depth=self.depth)
        m.d.sync += [
            rows.w_addr.eq(Cat(self.w_slot, self.w_layer)), rows.w_data.eq(self.w_row),
            rows.w_en.eq(self.w_en),
            rows.r_addr.eq(Cat(self.r_slot, self.r_layer)), rows.r_en.eq(self.r_en),
            self.r_row.eq(rows.r_data),
        ]
        return m
