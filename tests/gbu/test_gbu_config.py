"""GBUConfig: validation, thresholds as implemented, parameter parsing, analytic cycles."""

import pytest

from hw.gbu.config import GBUConfig
from hw.lib.config import SQ, UQ


def test_defaults_and_thresholds():
    cfg = GBUConfig()
    assert cfg.tile == 16 and cfg.dataflow == "irss"
    # 1/255 * 2**16 = 257.004 -> 257; an opacity of exactly 1/255 quantizes to the same 257.
    assert cfg.alpha_min_raw == 257
    assert cfg.alpha_max_raw == round(0.99 * 2 ** 16)
    assert cfg.t_min_raw == round(1e-4 * 2 ** 24) == 1678
    table = cfg.exp_table
    assert len(table) == 2 ** cfg.exp_addr_bits + 1 and table[0] == 1 << 16
    assert all(x >= y for x, y in zip(table, table[1:]))
    logs = cfg.log_table
    assert logs[0] is None and logs[-1] is not None
    # The bound for full opacity is at least ln(255) + 1/8 in p0_format.
    assert logs[-1] / 2 ** cfg.p0_format.f_bits >= 5.5413 + 0.125


def test_roundtrip():
    cfg = GBUConfig(lanes=8, dataflow="naive", acc_format=SQ(6, 32), exp_interp=False, bg_g=7)
    assert GBUConfig.from_dict(cfg.to_dict()) == cfg
    assert GBUConfig.from_params({"lanes": "2", "conic_format": "SQ(4, 26)"}).lanes == 2


@pytest.mark.parametrize("kwargs, match", [
    ({"lanes": 0}, "lanes=0"),
    ({"lanes": 17}, "lanes=17"),
    ({"tile": 8}, "tile=8"),
    ({"dataflow": "tiled"}, "dataflow"),
    ({"rounding": "up"}, "rounding"),
    ({"conic_format": UQ(3, 28)}, "conic_format.*signed"),
    ({"alpha_format": SQ(2, 16)}, "alpha_format.*unsigned"),
    ({"acc_format": SQ(6, 20)}, "acc_format.*fraction bits"),
    ({"p0_format": SQ(3, 24)}, "p0_format.*integer bits"),
    ({"coord_format": SQ(40, 20)}, "coord_format.*wide"),
    ({"alpha_format": UQ(1, 6)}, "1/255"),
    ({"t_format": UQ(1, 12)}, "1e-4"),
    ({"bg_r": -1}, "bg_r"),
    ({"bg_b": 1 << 16}, "bg_b"),
    ({"exp_addr_bits": 2}, "exp_addr_bits"),
    ({"exp_interp": 1}, "exp_interp"),
    ({"color_format": UQ(2, 30), "t_format": UQ(1, 40)}, "too wide"),
    ({"max_gaussians": 0}, "max_gaussians=0"),
    ({"max_gaussians": 1 << 20}, "max_gaussians"),
    ({"gaussian_fifo_depth": 2}, "gaussian_fifo_depth=2"),
    ({"row_setups": 0}, "row_setups=0"),
    ({"lanes": 2, "row_setups": 3}, "row_setups=3 is out of range: expected 1..2"),
    ({"record_fifo_depth": 2}, "record_fifo_depth=2"),
])
def test_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GBUConfig(**kwargs)


def test_param_errors():
    with pytest.raises(ValueError, match="no parameter"):
        GBUConfig.from_params({"lane": "2"})
    with pytest.raises(ValueError, match="not a fixed-point format"):
        GBUConfig.from_params({"acc_format": "Q6.30"})


def test_cycle_model():
    cfg = GBUConfig(lanes=4)
    work = list(range(16))
    # Lane 3 holds rows 3, 7, 11, 15.
    assert cfg.irss_tile_cycles(work) == 3 + 7 + 11 + 15
    assert GBUConfig(lanes=16).irss_tile_cycles(work) == 15
    assert GBUConfig(lanes=1).irss_tile_cycles(work) == sum(work)
    assert cfg.naive_tile_cycles(10) == 4 * 16 * 10
    assert GBUConfig(lanes=5).naive_tile_cycles(1) == 4 * 16
    with pytest.raises(ValueError, match="16 rows"):
        cfg.irss_tile_cycles([1, 2])
    # Row setups: one for all lanes takes every row's setups; two split lanes 0, 2 / 1, 3.
    setups = [10] * 8 + [0] * 8
    assert cfg.setup_tile_cycles(setups) == 80
    assert cfg.tile_cycles(work, setups) == 80 and cfg.tile_cycles(work) == 36
    assert GBUConfig(lanes=4, row_setups=2).tile_cycles(work, setups) == 40
    assert GBUConfig(lanes=4, dataflow="naive").tile_cycles(work, setups) == 36
    with pytest.raises(ValueError, match="16 rows"):
        cfg.setup_tile_cycles([1, 2])


def test_hardware_sizes():
    cfg = GBUConfig()
    assert cfg.max_gaussians == 4095 and cfg.index_width == 12
    assert GBUConfig(max_gaussians=4096).index_width == 13
    # Rows per lane: lane l holds rows l, l + lanes, ...
    assert [GBUConfig(lanes=n).slots for n in (1, 4, 5, 8, 16)] == [16, 4, 4, 2, 1]
    assert GBUConfig.from_params({"gaussian_fifo_depth": "64"}).gaussian_fifo_depth == 64


def test_setup_groups():
    cfg = GBUConfig(lanes=5, row_setups=2)
    assert cfg.setup_lanes(0) == [0, 2, 4] and cfg.setup_lanes(1) == [1, 3]
    assert GBUConfig(lanes=8).setup_lanes(0) == list(range(8))
    with pytest.raises(ValueError, match="setup=2"):
        cfg.setup_lanes(2)
