"""Configuration machinery shared by every generator.

This module imports nothing but the standard library, so that ``golden/`` and ``sw/`` can read
configurations without pulling in gateware (DESIGN.md section 2).

A generator's configuration is a frozen dataclass deriving from :class:`Config`. It validates
itself eagerly in ``__post_init__`` with the ``check_*`` helpers below, which raise
:class:`ValueError` naming the parameter, the value and what was expected. :class:`Config` adds
JSON serialization and parsing of ``--param key=value`` strings with the field names.
"""

import dataclasses
import json
import typing
from collections.abc import Mapping


__all__ = [
    "Config", "QFormat", "SQ", "UQ", "ROUNDING_MODES", "OVERFLOW_MODES",
    "check_int", "check_choice", "check_bool",
]


#: How a value is rounded when fractional bits are dropped.
#:
#: ``trunc``: toward minus infinity (drop the bits); ``half_up``: to nearest, ties toward plus
#: infinity; ``half_away``: to nearest, ties away from zero; ``half_even``: to nearest, ties to even.
ROUNDING_MODES = ("trunc", "half_up", "half_away", "half_even")

#: What happens to a value outside the destination range: ``wrap`` keeps the low bits (two's
#: complement), ``saturate`` clamps to the nearest representable value.
OVERFLOW_MODES = ("wrap", "saturate")


def _owner(owner):
    return f"{owner}." if owner else ""


def check_int(name, value, *, min=None, max=None, owner=None):
    """Check that ``value`` is an ``int`` within ``[min, max]``; return it."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{_owner(owner)}{name} must be an integer, not {value!r}")
    if (min is not None and value < min) or (max is not None and value > max):
        lo = "-inf" if min is None else min
        hi = "inf" if max is None else max
        raise ValueError(f"{_owner(owner)}{name}={value} is out of range: expected {lo}..{hi}")
    return value


def check_choice(name, value, choices, *, owner=None):
    """Check that ``value`` is one of ``choices``; return it."""
    if value not in choices:
        raise ValueError(f"{_owner(owner)}{name}={value!r} is not valid: expected one of "
                         + ", ".join(repr(c) for c in choices))
    return value


def check_bool(name, value, *, owner=None):
    """Check that ``value`` is a ``bool``; return it."""
    if not isinstance(value, bool):
        raise ValueError(f"{_owner(owner)}{name} must be true or false, not {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class QFormat:
    """A fixed-point number format, named as in Amaranth RFC 41.

    A value with raw two's-complement (or unsigned) integer ``n`` stands for ``n / 2**f_bits``.
    ``i_bits`` counts the integer bits, *including* the sign bit of a signed format, so that
    ``SQ(1, 7)`` is the Q1.7 format of 8 bits covering [-1, 1 - 2**-7].

    Parameters
    ----------
    i_bits : int
        Integer bits (the sign bit included for signed formats). May be negative or zero as long
        as the total width is at least 1, to describe small fractions.
    f_bits : int
        Fraction bits. May be negative: the value is then a multiple of ``2**-f_bits``.
    signed : bool
        Two's complement when true.
    """
    i_bits: int
    f_bits: int
    signed: bool

    def __post_init__(self):
        check_int("i_bits", self.i_bits, owner="QFormat")
        check_int("f_bits", self.f_bits, owner="QFormat")
        check_bool("signed", self.signed, owner="QFormat")
        if self.width < 1 or (self.signed and self.width < 2):
            raise ValueError(f"QFormat width i_bits + f_bits = {self.width} is too small: expected "
                             f">= {2 if self.signed else 1} for a{' signed' if self.signed else 'n unsigned'} "
                             f"format")

    @property
    def width(self):
        """Total number of bits of the raw integer."""
        return self.i_bits + self.f_bits

    @property
    def min_int(self):
        """Smallest raw integer."""
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_int(self):
        """Largest raw integer."""
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def resolution(self):
        """Value of one least significant bit."""
        return 2.0 ** -self.f_bits

    def __str__(self):
        return f"{'SQ' if self.signed else 'UQ'}({self.i_bits}, {self.f_bits})"

    def to_json(self):
        return str(self)

    @classmethod
    def parse(cls, text):
        """Parse ``"SQ(i, f)"`` or ``"UQ(i, f)"`` (spaces optional)."""
        t = str(text).replace(" ", "")
        if len(t) >= 6 and t[:3] in ("SQ(", "UQ(") and t.endswith(")"):
            parts = t[3:-1].split(",")
            if len(parts) == 2:
                try:
                    return cls(int(parts[0]), int(parts[1]), t[0] == "S")
                except ValueError as e:
                    if "QFormat" in str(e):
                        raise
        raise ValueError(f"{text!r} is not a fixed-point format: expected SQ(i_bits, f_bits) or "
                         f"UQ(i_bits, f_bits)")


def SQ(i_bits, f_bits):
    """Signed fixed-point format with ``i_bits`` integer bits (sign included)."""
    return QFormat(i_bits, f_bits, True)


def UQ(i_bits, f_bits):
    """Unsigned fixed-point format."""
    return QFormat(i_bits, f_bits, False)


def _parse_value(owner, name, annotation, text):
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        choices = typing.get_args(annotation)
        for choice in choices:
            if str(choice) == text:
                return choice
        return check_choice(name, text, choices, owner=owner)
    if annotation is bool:
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{owner}.{name}={text!r} is not a boolean: expected true or false")
    if annotation is int:
        try:
            return int(text, 0)
        except ValueError:
            raise ValueError(f"{owner}.{name}={text!r} is not an integer") from None
    if annotation is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{owner}.{name}={text!r} is not a number") from None
    if annotation is QFormat:
        try:
            return QFormat.parse(text)
        except ValueError as e:
            raise ValueError(f"{owner}.{name}: {e}") from None
    if annotation is str:
        return text
    raise TypeError(f"{owner}.{name}: cannot parse a parameter of type {annotation!r}")


class Config:
    """Mixin for the frozen configuration dataclass of a generator.

    Subclasses are ``@dataclasses.dataclass(frozen=True)`` with typed, defaulted fields (``int``,
    ``bool``, ``float``, ``str``, ``typing.Literal[...]`` or :class:`QFormat`) and check them in
    ``__post_init__``.
    """

    @classmethod
    def param_names(cls):
        """Names of the parameters a user can set."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_params(cls, params: Mapping[str, str]):
        """Build a configuration from ``key=value`` strings, as given with ``--param``.

        Raises
        ------
        ValueError
            For an unknown key (naming the valid ones), a value that does not parse, or a value
            that the configuration rejects.
        """
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for key, text in params.items():
            if key not in hints or key not in cls.param_names():
                raise ValueError(f"{cls.__name__} has no parameter {key!r}: expected one of "
                                 + ", ".join(cls.param_names()))
            kwargs[key] = _parse_value(cls.__name__, key, hints[key], text)
        return cls(**kwargs)

    def to_dict(self):
        """Parameters as JSON-ready values (formats as ``"SQ(i, f)"`` strings)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.to_json() if isinstance(value, QFormat) else value
        return out

    @classmethod
    def from_dict(cls, data: Mapping):
        """Inverse of :meth:`to_dict`."""
        return cls.from_params({k: (str(v).lower() if isinstance(v, bool) else str(v))
                                for k, v in data.items()})

    def to_json(self, **kwargs):
        return json.dumps({"type": type(self).__name__, "params": self.to_dict()}, **kwargs)

    def replace(self, **changes):
        """A copy with some parameters changed (validated again)."""
        return dataclasses.replace(self, **changes)
