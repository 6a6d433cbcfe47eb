"""On-chip K/V rows of every layer, addressed by layer and physical row (slot)."""

from amaranth.hdl import Cat, Module, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .config import KVConfig


__all__ = ["KVStorage", "row_layout"]


def row_layout(config):
    """One token's K and V of one layer, all heads: ``{k, v}``, each ``kv_heads * head_dim``
    elements of ``elem_bits``, element ``e`` of head ``h`` at element index
    ``h * head_dim + e`` (little end first)."""
    bits = config.kv_heads * config.head_dim * config.elem_bits
    return data.StructLayout({"k": unsigned(bits), "v": unsigned(bits)})


class KVStorage(wiring.Component):
    """One memory of ``layers * 2**slot_bits`` K/V rows; a row is written once and never moved.

    The address is ``{layer, slot}`` concatenated, so no multiplier is needed; rows past
    ``rows_per_layer`` in each layer's power-of-two stride are unused.

    Parameters
    ----------
    config : KVConfig

    Interface attributes
    --------------------
    w_en, w_layer, w_slot, w_row : ``In``
        Write ``w_row`` (:func:`row_layout`) to row ``w_slot`` of layer ``w_layer`` at the edge
        where ``w_en`` is high.
    r_en, r_layer, r_slot : ``In``
        Read row ``r_slot`` of layer ``r_layer`` where ``r_en`` is high.
    r_row : ``Out(row_layout(config))``
        The row read, from the cycle after ``r_en``; held while ``r_en`` is low. A read and a
        write of the same row in one cycle reads the old row.
    """

    def __init__(self, *, config):
        if not isinstance(config, KVConfig):
            raise TypeError(f"KVStorage.config must be a KVConfig, not {config!r}")
        self._config = config
        layer = unsigned(max(1, (config.layers - 1).bit_length()))
        slot = unsigned(config.slot_bits)
        super().__init__({
            "w_en": In(1), "w_layer": In(layer), "w_slot": In(slot),
            "w_row": In(row_layout(config)),
            "r_en": In(1), "r_layer": In(layer), "r_slot": In(slot),
            "r_row": Out(row_layout(config)),
        })

    @property
    def config(self):
        """The :class:`KVConfig` the storage is built from."""
        return self._config

    @property
    def depth(self):
        """Rows of the memory: ``layers * 2**slot_bits``."""
        return self._config.layers << self._config.slot_bits

    def elaborate(self, platform):
        m = Module()
        m.submodules.rows = rows = Memory(shape=row_layout(self._config), depth=self.depth,
                                          init=[])
        wr, rd = rows.write_port(), rows.read_port()
        m.d.comb += [
            wr.addr.eq(Cat(self.w_slot, self.w_layer)), wr.data.eq(self.w_row),
            wr.en.eq(self.w_en),
            rd.addr.eq(Cat(self.r_slot, self.r_layer)), rd.en.eq(self.r_en),
            self.r_row.eq(rd.data),
        ]
        return m
