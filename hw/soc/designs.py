"""Registers the SoC, the default design: what a user builds first is a board they can drive."""

import functools

from ..gbu.designs import peak_throughput as gbu_peak_throughput
from ..host.board_top import host_board_top
from ..host.config import CMD_WRITE_BLOCK
from ..registry import Design, register
from .config import SoCConfig
from .soc import SoC


def _peak_throughput(config, fmax_hz):
    figures = {}
    if config.gemm is not None:
        # Two operations per multiply-accumulate, as GOPS figures are usually quoted.
        figures["GEMM GOPS"] = 2 * config.gemm.peak_macs_per_cycle * fmax_hz / 1e9
    if config.kv is not None:
        figures["KV rows/s (read-out)"] = fmax_hz
    if config.gbu is not None:
        figures.update({f"GBU {name}": value
                        for name, value in gbu_peak_throughput(config.gbu, fmax_hz).items()})
    host = config.host
    figures["host block write payload bytes/s"] = (
        host.line_bytes_per_s() * host.frame_efficiency(CMD_WRITE_BLOCK, host.max_words))
    return figures


register(Design(
    name="soc",
    summary="host bridge on the USB-UART with the tensor engine, the LaCache KV engine and the "
            "Gaussian Blending Unit on its bus (0 rows, layers or lanes leave one out)",
    config_cls=SoCConfig,
    make_core=lambda config: SoC(config=config),
    peak_throughput=_peak_throughput,
    board_top=functools.partial(host_board_top, make_core=SoC),
    outputs=lambda config: {"address_map.json": SoC.address_map_of(config)},
))
