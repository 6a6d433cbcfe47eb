"""argparse value types shared by the command lines of ``sw``."""

import argparse


__all__ = ["integer"]


def integer(text):
    """An integer in any base Python reads (``42``, ``0x2a``, ``0b101010``)."""
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
