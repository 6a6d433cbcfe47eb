"""Stream payloads as the integers a cocotb testbench or the host drives and reads: Amaranth's
own layout packing (``Layout.const``), so nested struct and array layouts with signed fields pack exactly as
the emitted Verilog flattens them, with no hand-written bit offsets to keep in step."""

from amaranth.hdl import Const, Shape
from amaranth.lib import data


__all__ = ["pack", "pack_all", "unpack"]


def pack(shape, value):
    """``value`` (a dict for a struct layout, a list for an array layout, an int otherwise) as
    the unsigned integer of the ``shape``-wide payload bits."""
    if isinstance(shape, data.Layout):
        return shape.const(value).as_value().value & ((1 << shape.size) - 1)
    shape = Shape.cast(shape)
    return Const(value, shape).value & ((1 << shape.width) - 1)


def pack_all(shape, values):
    """:func:`pack` of every item of ``values``."""
    return [pack(shape, value) for value in values]


def unpack(shape, value):
    """The payload bits ``value`` read as ``shape``: a :class:`amaranth.lib.data.Const` view for
    a layout (fields by name or index, signed and enum fields decoded), an int otherwise."""
    if isinstance(shape, data.Layout):
        return data.Const(shape, value)
    shape = Shape.cast(shape)
    return Const(value, shape).value
