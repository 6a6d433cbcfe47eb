"""ECP5 boards on top of amaranth-boards.

Each entry of :data:`BOARDS` wraps an amaranth-boards platform in a subclass that needs only the
tools that produce a bitstream (Yosys, nextpnr-ecp5, ecppack): programming tools such as
openFPGALoader or dfu-suffix are a matter of the user's desk, not of the build.
"""

import dataclasses

from amaranth.vendor import LatticePlatform
from amaranth_boards.colorlight_5a75b_r7_0 import Colorlight_5A75B_R70Platform
from amaranth_boards.ecpix5 import ECPIX545Platform, ECPIX585Platform
from amaranth_boards.orangecrab_r0_2 import OrangeCrabR0_2_25FPlatform, OrangeCrabR0_2_85FPlatform
from amaranth_boards.ulx3s import (ULX3S_12F_Platform, ULX3S_25F_Platform, ULX3S_45F_Platform,
                                   ULX3S_85F_Platform)
from amaranth_boards.versa_ecp5 import VersaECP5Platform


__all__ = ["Board", "BOARDS", "DEFAULT_BOARD", "get_board", "board_names"]


#: What ``--board ecp5`` means.
DEFAULT_BOARD = "ulx3s-85f"


def _bitstream_only(platform_cls):
    """Subclass ``platform_cls`` so that it runs and requires only Yosys, nextpnr and ecppack."""
    return type(platform_cls.__name__, (platform_cls,), {
        "required_tools": property(lambda self: LatticePlatform.required_tools.fget(self)),
        "command_templates": property(lambda self: LatticePlatform.command_templates.fget(self)),
    })


@dataclasses.dataclass(frozen=True)
class Board:
    """One board of the table.

    Attributes
    ----------
    name : str
        The ``--board`` name.
    platform_cls : type
        The amaranth-boards platform, reduced to the bitstream-producing tools.
    description : str
        One line for ``--board list``.
    """
    name: str
    platform_cls: type
    description: str

    def platform(self):
        return self.platform_cls()

    @property
    def device(self):
        return self.platform_cls.device

    @property
    def package(self):
        return self.platform_cls.package

    @property
    def speed(self):
        return self.platform_cls.speed

    @property
    def clock_hz(self):
        """Frequency of the board's default oscillator."""
        platform = self.platform_cls()
        return platform.lookup(platform.default_clk).clock.frequency


BOARDS = {board.name: board for board in [
    Board("ulx3s-12f", _bitstream_only(ULX3S_12F_Platform), "Radiona ULX3S, LFE5U-12F"),
    Board("ulx3s-25f", _bitstream_only(ULX3S_25F_Platform), "Radiona ULX3S, LFE5U-25F"),
    Board("ulx3s-45f", _bitstream_only(ULX3S_45F_Platform), "Radiona ULX3S, LFE5U-45F"),
    Board("ulx3s-85f", _bitstream_only(ULX3S_85F_Platform), "Radiona ULX3S, LFE5U-85F"),
    Board("orangecrab-25f", _bitstream_only(OrangeCrabR0_2_25FPlatform),
          "1BitSquared OrangeCrab r0.2, LFE5U-25F"),
    Board("orangecrab-85f", _bitstream_only(OrangeCrabR0_2_85FPlatform),
          "1BitSquared OrangeCrab r0.2, LFE5U-85F"),
    Board("ecpix5-45", _bitstream_only(ECPIX545Platform), "LambdaConcept ECPIX-5, LFE5UM5G-45F"),
    Board("ecpix5-85", _bitstream_only(ECPIX585Platform), "LambdaConcept ECPIX-5, LFE5UM5G-85F"),
    Board("colorlight-5a75b", _bitstream_only(Colorlight_5A75B_R70Platform),
          "Colorlight 5A-75B v7.0, LFE5U-25F"),
    Board("versa-ecp5", _bitstream_only(VersaECP5Platform), "Lattice ECP5 Versa, LFE5UM-45F"),
]}


def board_names():
    return ["ecp5", *BOARDS]


def get_board(name):
    """Look a board up by name; ``"ecp5"`` is :data:`DEFAULT_BOARD`.

    Raises
    ------
    ValueError
        For an unknown name, listing the valid ones.
    """
    key = DEFAULT_BOARD if name == "ecp5" else name.lower()
    if key not in BOARDS:
        raise ValueError(f"unknown board {name!r}: expected one of " + ", ".join(board_names()))
    return BOARDS[key]
