"""RowSetup on its emitted Verilog, in cocotb, against golden.gbu_model.row_setup: the default
config (narrow and random ones run in amaranth.sim), a few hundred (Gaussian, row) pairs, with
and without stalls."""

import pytest
from amaranth.hdl import Const

from hw.gbu.config import GBUConfig
from hw.gbu.row_setup import RowSetup, row_setup_in_layout, row_setup_out_layout
from sim.runner import run

from .test_row_setup import expected_outputs, make_items


def _words(layout, payloads):
    return [Const.cast(layout.const(p)).value for p in payloads]


@pytest.mark.parametrize("cfg", [GBUConfig()], ids=["default"])
def test_row_setup_verilog(cfg):
    items = make_items(cfg, seed=21, n_random=40, rows_per_gaussian=3)
    out_layout = row_setup_out_layout(cfg)
    dut = RowSetup(config=cfg)
    vectors = {
        "inputs": _words(row_setup_in_layout(cfg), items),
        "expected": _words(out_layout, expected_outputs(cfg, items)),
        "fields": [(name, field.offset, field.width) for name, field in out_layout],
        "latency": dut.latency,
    }
    assert run(dut, name="gbu_row_setup", testbench="sim.tb.gbu_row_setup", config=cfg,
               vectors=vectors, design_name="gbu-row-setup", seed=5) == 2
