"""Board pins for the tops that ``hw.flow`` builds: requested raw, buffered with ``lib.io``."""

from amaranth.lib import io


__all__ = ["pin", "subsignal_pins"]


def _buffer(m, port, direction, name):
    m.submodules[name] = buffer = io.Buffer(direction, port)
    return buffer.i if direction == "i" else buffer.o


def pin(m, platform, name, direction):
    """The signal of pin ``name`` number 0, ``direction`` ``"i"`` or ``"o"``; the buffer is
    added to ``m``."""
    return _buffer(m, platform.request(name, 0, dir="-"), direction, f"{name}_buf")


def subsignal_pins(m, platform, name, **directions):
    """Signals of the subsignals of resource ``name`` number 0, e.g.
    ``subsignal_pins(m, platform, "uart", rx="i", tx="o")`` -> ``{"rx": ..., "tx": ...}``."""
    resource = platform.request(name, 0, dir="-")
    return {sub: _buffer(m, getattr(resource, sub), direction, f"{name}_{sub}_buf")
            for sub, direction in directions.items()}
