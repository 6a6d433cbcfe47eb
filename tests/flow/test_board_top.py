"""Designs with a board top of their own: host-bridge on a board's real UART pins."""

import gc

import pytest

from boards import get_board
from hw.flow import BuildError, build_bitstream
from hw.host.board_top import host_board_top
from hw.host.config import HostConfig
from hw.registry import get_design


def test_host_bridge_real_build_on_uart_pins(tmp_path):
    """Yosys, nextpnr and ecppack on ULX3S's FTDI UART pins, at the 25 MHz oscillator."""
    report = build_bitstream(get_design("host-bridge"), HostConfig(), get_board("ulx3s-25f"),
                             out_dir=tmp_path, progress=False)
    assert report["harness"]["board_top"] is True
    assert report["harness"]["note"].startswith("board top: uart 0 rx/tx")
    assert report["clock"]["source"] == "oscillator" and report["clock"]["target_mhz"] == 25.0
    assert report["config"]["clock_hz"] == 25_000_000
    assert report["timing_met"]
    (fmax,) = report["fmax"].values()
    assert fmax["constraint_mhz"] == 25 and fmax["achieved_mhz"] >= 25
    # rx, tx and the oscillator (nextpnr counts the I/O it placed): far fewer than a harness.
    assert report["utilization"]["TRELLIS_IO"]["used"] <= 6
    assert report["utilization"]["EHXPLLL"]["used"] == 0
    assert (tmp_path / "top.bit").stat().st_size > 0


def test_board_without_uart_is_a_clear_error(tmp_path):
    with pytest.raises(BuildError, match=r"^host-bridge cannot be built for orangecrab-25f: it has "
                                         r"no UART pins \(no 'uart' resource\)"):
        build_bitstream(get_design("host-bridge"), HostConfig(), get_board("orangecrab-25f"),
                        out_dir=tmp_path, progress=False)


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_board_top_runs_the_bridge_at_the_pll_frequency():
    """With --freq the bridge's divisor and timeouts are those of the PLL output."""
    platform = get_board("ulx3s-25f").platform()
    top = host_board_top(HostConfig(), platform, 50e6)
    assert top.pll is not None and top.pll.output_mhz == 50.0
    assert top.config.clock_hz == 50_000_000 and top.config.divisor == 50
    top = host_board_top(HostConfig(), platform, 25e6)
    assert top.pll is None and top.config == HostConfig()
    # The unused tops warn when collected: collect them here, where the warning is filtered,
    # and not in whichever test runs next.
    del top
    gc.collect()
