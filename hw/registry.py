"""The one registry of designs that ``python -m hw.build`` can build.

A family registers its designs in its ``designs`` module, listed in :data:`_DESIGN_MODULES`; the
modules are imported on first use so that listing designs costs one import per family.
"""

import dataclasses
import importlib
from collections.abc import Callable


__all__ = ["Design", "register", "get_design", "designs", "default_design_name"]


#: Modules whose import registers designs, in the order designs are listed.
_DESIGN_MODULES = ("hw.lib.designs", "hw.gemm.designs", "hw.gbu.designs", "hw.kv.designs",
                   "hw.host.designs", "hw.soc.designs")

#: The design ``python -m hw.build`` builds when none is named: the most complete one available.
_DEFAULT_DESIGN = "soc"


@dataclasses.dataclass(frozen=True)
class Design:
    """A buildable design.

    Attributes
    ----------
    name : str
        The ``--design`` name.
    summary : str
        One line for ``--design list``.
    config_cls : type
        The generator's config dataclass (a :class:`hw.lib.config.Config`).
    make_core : callable
        ``make_core(config) -> wiring.Component``: the core, as emitted with ``--verilog``.
    peak_throughput : callable or None
        ``peak_throughput(config, fmax_hz) -> dict`` of named peak figures at that clock
        (e.g. ``{"MAC/s": ...}``); ``None`` when the design has no natural throughput figure
        beyond transfers per second.
    board_top : callable or None
        ``board_top(config, platform, clock_hz) -> Elaboratable``: a top that puts the core on the
        board's real pins (e.g. a UART) and makes the ``sync`` domain itself, from the platform's
        default oscillator, through a PLL when ``clock_hz`` differs from the oscillator's. The
        flow builds it instead of :class:`hw.harness.PinHarness`; ``clock_hz`` is the actual
        ``sync`` frequency (PLL output or oscillator). It raises ``ValueError`` when the board
        lacks the pins it needs. Its optional ``pins`` attribute (str) names the pins it uses,
        for the report. ``None``: the design is built in a :class:`~hw.harness.PinHarness`.
    outputs : callable or None
        ``outputs(config) -> {file name: JSON-ready data}``: files the flow writes beside the
        bitstream for the host (e.g. the SoC's ``address_map.json``).
    """
    name: str
    summary: str
    config_cls: type
    make_core: Callable
    peak_throughput: Callable | None = None
    board_top: Callable | None = None
    outputs: Callable | None = None


_registry: dict[str, Design] = {}
_loaded = False


def register(design: Design):
    if design.name in _registry:
        raise ValueError(f"design {design.name!r} is registered twice")
    _registry[design.name] = design
    return design


def _load():
    global _loaded
    if not _loaded:
        _loaded = True
        for module in _DESIGN_MODULES:
            importlib.import_module(module)


def designs():
    """All designs, by name."""
    _load()
    return dict(_registry)


def default_design_name():
    return _DEFAULT_DESIGN


def get_design(name):
    """Look a design up by name.

    Raises
    ------
    ValueError
        For an unknown name, listing the valid ones.
    """
    _load()
    if name not in _registry:
        raise ValueError(f"unknown design {name!r}: expected one of " + ", ".join(_registry))
    return _registry[name]
