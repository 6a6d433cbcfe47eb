"""Stream payloads as the integers a cocotb testbench or the host drives and reads: Amaranth's
own layout packing (``Layout.const``), so nested struct and array layouts with signed fields pack exactly as
the emitted Verilog flattens them, with no hand-written bit offsets to keep in step."""

from amaranth.hdl import Const, Shape
from amaranth.lib import data


__all__ = ["pack", "pack_all", "unpack"]


def _check_fits(shape, value, name):
    # Amaranth's constants truncate what does not fit; a payload must not lose bits silently.
    if isinstance(shape, data.Layout):
        keys = range(len(value)) if isinstance(shape, data.ArrayLayout) else value
        for key in keys:
            _check_fits(shape[key].shape, value[key], f"{name}[{key!r}]")
    elif isinstance(value, int):
        shape = Shape.cast(shape)
        low, high = (-(1 << shape.width - 1), (1 << shape.width - 1) - 1) if shape.signed \
            else (0, (1 << shape.width) - 1)
        if not low <= value <= high:
            raise ValueError(f"{name} = {value} does not fit {shape}: expected {low}..{high}")


def pack(shape, value):
    """``value`` (a dict for a struct layout, a list for an array layout, an int otherwise) as
    the unsigned integer of the ``shape``-wide payload bits; a ``ValueError`` names a field whose
    value does not fit its shape."""
    _check_fits(shape, value, "payload")
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
