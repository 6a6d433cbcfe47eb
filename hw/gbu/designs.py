"""Registers the Gaussian Blending Unit as the buildable design ``gbu``."""

from ..registry import Design, register
from .config import GBUConfig
from .core import GaussianBlendingUnit


__all__ = ["peak_throughput"]


def peak_throughput(config, fmax_hz):
    """Gaussian-pixel evaluations/s at ``fmax_hz``: every lane evaluates one pair per cycle."""
    return {"evaluations/s": config.lanes * fmax_hz}


register(Design(
    name="gbu",
    summary="Gaussian Blending Unit: row setup (IRSS) or direct power (naive), row shader lanes",
    config_cls=GBUConfig,
    make_core=lambda config: GaussianBlendingUnit(config=config),
    peak_throughput=peak_throughput,
))
