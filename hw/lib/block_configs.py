"""Configurations of the shared blocks that are buildable designs on their own.

Standard library only (DESIGN.md section 2): ``golden/`` reads these.
"""

import dataclasses
import typing

from .config import OVERFLOW_MODES, ROUNDING_MODES, Config, QFormat, SQ, check_bool, check_choice, check_int


__all__ = ["StreamFIFOConfig", "RequantizerConfig"]


@dataclasses.dataclass(frozen=True)
class StreamFIFOConfig(Config):
    """A stream FIFO: ``width``-bit payloads, ``depth`` entries (block RAM when deep)."""
    width: int = 32
    depth: int = 512

    def __post_init__(self):
        check_int("width", self.width, min=1, max=4096, owner="StreamFIFOConfig")
        check_int("depth", self.depth, min=1, max=1 << 20, owner="StreamFIFOConfig")


@dataclasses.dataclass(frozen=True)
class RequantizerConfig(Config):
    """A fixed-point format converter: ``src`` to ``dst`` with rounding and overflow handling."""
    src: QFormat = SQ(16, 16)
    dst: QFormat = SQ(8, 0)
    rounding: typing.Literal[ROUNDING_MODES] = "half_even"
    overflow: typing.Literal[OVERFLOW_MODES] = "saturate"
    registered: bool = True

    def __post_init__(self):
        owner = "RequantizerConfig"
        for name in ("src", "dst"):
            if not isinstance(getattr(self, name), QFormat):
                raise ValueError(f"{owner}.{name} must be a QFormat such as SQ(8, 8), "
                                 f"not {getattr(self, name)!r}")
        check_choice("rounding", self.rounding, ROUNDING_MODES, owner=owner)
        check_choice("overflow", self.overflow, OVERFLOW_MODES, owner=owner)
        check_bool("registered", self.registered, owner=owner)
