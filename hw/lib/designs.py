"""Registers the shared blocks that are useful designs on their own."""

from ..registry import Design, register
from .block_configs import RequantizerConfig, StreamFIFOConfig
from .fixed import Requantizer
from .stream import StreamFIFO


register(Design(
    name="stream-fifo",
    summary="valid/ready stream FIFO in block RAM (the reference small design)",
    config_cls=StreamFIFOConfig,
    make_core=lambda config: StreamFIFO(config.width, depth=config.depth),
    peak_throughput=lambda config, fmax_hz: {"transfers/s": fmax_hz,
                                             "bytes/s": fmax_hz * config.width / 8},
))

register(Design(
    name="requantizer",
    summary="fixed-point format converter with rounding and saturation",
    config_cls=RequantizerConfig,
    make_core=lambda config: Requantizer(src=config.src, dst=config.dst, rounding=config.rounding,
                                         overflow=config.overflow, registered=config.registered),
    peak_throughput=lambda config, fmax_hz: {"conversions/s": fmax_hz},
))
