"""argparse value types shared by the command lines of ``sw``."""

import argparse


__all__ = ["integer", "size"]


def integer(text):
    """An integer in any base Python reads (``42``, ``0x2a``, ``0b101010``)."""
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def size(text):
    """An image size ``WIDTHxHEIGHT``, both at least 1."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT") from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: width and height must be >= 1")
    return width, height
