# amaranth: UnusedElaboratable=no
"""The SoC's address map follows from its config; a host holding another bitstream's map is
refused (in amaranth.sim, through the UART pins); bad configs are clear errors. The jobs
themselves run on the emitted Verilog: test_cocotb_soc.py."""

import pytest
from hw.registry import get_design
from hw.soc.config import SoCConfig
from hw.soc.soc import INFO_MAGIC, SoC
from sw.device import Device, DeviceError, SimTransport
from sw.soc import SoCClient

LINK = dict(clock_hz=1_000_000, baud=250_000, idle_timeout_us=200, max_words=16,
            window_depth=4)


def _client(config, address_map=None):
    soc = SoC(config=config)
    device = Device(SimTransport(config.host, core=soc), max_words=config.max_words)
    return SoCClient(device, address_map or soc.address_map())


def test_address_map_follows_the_config():
    config = SoCConfig()
    amap = get_design("soc").outputs(config)["address_map.json"]
    names = [r["name"] for r in amap["regions"]]
    assert names == ["info", "gemm_cmd", "gemm_q", "gemm_a", "gemm_w", "gemm_c", "kv_cmd",
                     "kv_rsp", "kv_signals", "gbu_tile", "gbu_splats", "gbu_pixels"]
    assert amap["info"]["magic"] == INFO_MAGIC
    assert amap["accelerators"]["gemm"]["streams"]["a"] == {
        "region": "gemm_a", "direction": "to_device", "payload_bits": 64, "words_per_item": 2,
        "depth": 16}
    assert SoCConfig.from_dict(amap["config"]) == config
    other = SoC.address_map_of(SoCConfig(gemm_cols=4))
    assert other["info"]["map_crc32"] != amap["info"]["map_crc32"]


def test_peak_figures_name_every_accelerator():
    peak = get_design("soc").peak_throughput
    assert "GBU evaluations/s" not in peak(SoCConfig(gbu_lanes=0), 25e6)
    figures = peak(SoCConfig(gbu_lanes=2), 25e6)
    assert figures["GBU evaluations/s"] == 50e6 and figures["GEMM GOPS"] == 3.2


def test_a_map_of_another_bitstream_is_refused():
    config = SoCConfig(**LINK, gemm_rows=2, gemm_cols=2, kv_layers=0)
    other = SoC.address_map_of(config.replace(gemm_cols=3))
    with pytest.raises(DeviceError, match="another bitstream"):
        _client(config, other)


@pytest.mark.parametrize("params, message", [
    ({"gemm_rows": 0, "kv_layers": 0, "gbu_lanes": 0}, "no accelerator"),
    ({"window_depth": 2}, "window_depth"),
    ({"kv_layers": 8}, "SoCConfig: KVConfig.layers=8"),
    ({"baud": 10_000_000}, "SoCConfig: HostConfig.baud"),
])
def test_bad_config_is_a_clear_error(params, message):
    with pytest.raises(ValueError, match=message):
        SoCConfig(**params)
