"""The board table, toolchain discovery and PLL settings."""

import os
import stat

import pytest

import boards
from boards.toolchain import ToolchainError, discover
from hw.lib.ecp5_pll import pll_settings


REQUIRED_BOARDS = ["ulx3s-12f", "ulx3s-25f", "ulx3s-45f", "ulx3s-85f", "orangecrab-25f",
                   "orangecrab-85f", "ecpix5-45", "ecpix5-85", "colorlight-5a75b", "versa-ecp5"]


def test_table_has_the_required_boards():
    assert set(REQUIRED_BOARDS) <= set(boards.BOARDS)
    assert boards.get_board("ecp5") is boards.BOARDS["ulx3s-85f"]
    assert boards.get_board("ULX3S-25F").device == "LFE5U-25F"


@pytest.mark.parametrize("name", REQUIRED_BOARDS)
def test_boards_need_only_the_bitstream_tools(name):
    platform = boards.get_board(name).platform()
    assert platform.required_tools == ["yosys", "nextpnr-ecp5", "ecppack"]
    assert len(platform.command_templates) == 3  # no dfu-suffix step (OrangeCrab)
    assert boards.get_board(name).clock_hz > 0


def test_unknown_board_lists_the_choices():
    with pytest.raises(ValueError, match=r"unknown board 'ulx4s': expected one of ecp5, ulx3s-12f"):
        boards.get_board("ulx4s")


def _fake_tool(directory, name):
    path = directory / name
    path.write_text("#!/bin/sh\necho fake\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_native_tool_on_path_wins(tmp_path, monkeypatch):
    _fake_tool(tmp_path, "nextpnr-ecp5")
    monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep + os.environ["PATH"])
    monkeypatch.delenv("NEXTPNR_ECP5", raising=False)
    tool = discover(("nextpnr-ecp5",))["nextpnr-ecp5"]
    assert (tool.origin, tool.path) == ("native", str(tmp_path / "nextpnr-ecp5"))


def test_environment_variable_wins(tmp_path, monkeypatch):
    fake = _fake_tool(tmp_path, "my-yosys")
    monkeypatch.setenv("YOSYS", str(fake))
    tool = discover(("yosys",))["yosys"]
    assert (tool.origin, tool.path, tool.version()) == ("env", str(fake), "fake")


def test_yowasp_fallback(monkeypatch, tmp_path):
    monkeypatch.delenv("ECPPACK", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no native ecppack
    tool = discover(("ecppack",))["ecppack"]
    assert tool.origin == "yowasp" and tool.path.endswith("yowasp-ecppack")


def test_missing_tool_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.delenv("ECPPACK", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("boards.toolchain._scripts_dir", lambda: tmp_path)
    with pytest.raises(ToolchainError, match="ecppack not found: install the 'yowasp-ecppack'"):
        discover(("ecppack",))


def _all_outputs(input_mhz):
    """Every frequency an EHXPLLL with CLKOP feedback can make, by brute force."""
    for clki_div in range(1, 129):
        pfd = input_mhz / clki_div
        for clkfb_div in range(1, 81):
            out = pfd * clkfb_div
            if 3.125 <= pfd <= 400 and 3.125 <= out <= 400 and any(
                    400 <= out * d <= 800 for d in range(1, 129)):
                yield out


@pytest.mark.parametrize("input_mhz, output_mhz", [(25, 150), (25, 100), (25, 48), (48, 200),
                                                   (100, 222), (25, 3.2)])
def test_pll_settings_nearest_within_device_limits(input_mhz, output_mhz):
    s = pll_settings(input_mhz, output_mhz)
    assert 400 <= s.vco_mhz <= 800
    assert 3.125 <= input_mhz / s.clki_div <= 400
    best = min(abs(out - output_mhz) for out in _all_outputs(input_mhz))
    assert abs(s.output_mhz - output_mhz) == pytest.approx(best)


def test_pll_exact_when_possible():
    assert pll_settings(25, 150).output_mhz == 150
    assert pll_settings(25, 100).output_mhz == 100


@pytest.mark.parametrize("output_mhz", [0.5, 401, 1000])
def test_pll_rejects_impossible_frequencies(output_mhz):
    with pytest.raises(ValueError, match=r"freq=.* MHz is out of range"):
        pll_settings(25, output_mhz)


@pytest.mark.parametrize("name", ["ulx3s-25f", "orangecrab-25f", "ecpix5-45", "versa-ecp5"])
def test_harness_prepares_on_each_pin_variant_without_deprecated_api(name):
    """Button/LED, button/RGB LED, UART RX/RGB LED and switch/LED boards; PLL on and off."""
    import warnings

    from hw.harness import PinHarness
    from hw.lib.stream import StreamFIFO
    board = boards.get_board(name)
    for pll in (None, pll_settings(board.clock_hz / 1e6, 60)):
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)
            board.platform().prepare(PinHarness(StreamFIFO(8, depth=4), pll=pll), name="top")
