"""Registers the host bridge as a buildable design."""

from ..registry import Design, register
from .board_top import host_board_top
from .bridge import HostBridge
from .config import CMD_WRITE_BLOCK, HostConfig


def _peak_throughput(config, fmax_hz):
    # The line, not the clock, limits the bridge (as long as fmax >= clock_hz).
    words = config.max_words
    return {"line bytes/s": config.line_bytes_per_s(),
            "block write payload bytes/s": config.line_bytes_per_s()
            * config.frame_efficiency(CMD_WRITE_BLOCK, words)}


register(Design(
    name="host-bridge",
    summary="UART host link: framed, CRC-checked register/memory access onto an on-chip bus",
    config_cls=HostConfig,
    make_core=lambda config: HostBridge(config=config),
    peak_throughput=_peak_throughput,
    board_top=host_board_top,
))
