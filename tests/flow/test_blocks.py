"""Per-block utilization in the build report: the split of Yosys ``stat -json`` into the design
core's blocks (hand-made statistics), and a real build that reports and prints it."""

import pytest

from boards import get_board
from hw.flow import block_utilization, build_bitstream
from hw.lib.block_configs import StreamFIFOConfig
from hw.registry import get_design
from hw.report import summarize


def _module(**cells):
    return {"num_cells_by_type": cells}


STAT = {"modules": {
    "\\top": _module(**{"LUT4": 3, "TRELLIS_FF": 40, "top.core": 1, "top.clocking": 1}),
    "\\top.clocking": _module(EHXPLLL=1, TRELLIS_FF=2),
    "\\top.core": _module(**{"LUT4": 5, "top.core.fifo": 1, "top.core.mac": 2}),
    "\\top.core.fifo": _module(LUT4=10, CCU2C=2, TRELLIS_FF=7, DP16KD=1, TRELLIS_DPR16X4=3),
    "\\top.core.mac": _module(**{"MULT18X18D": 1, "TRELLIS_FF": 4, "$scopeinfo": 1}),
}}


def _cells(lut=0, ff=0, dsp=0, ebr=0, lutram=0):
    return {"LUT4": lut, "FF": ff, "DSP": dsp, "EBR": ebr, "LUTRAM": lutram}


def test_blocks_are_the_core_children_and_add_up():
    flat = {"modules": {"\\top": _module(LUT4=15, CCU2C=2, TRELLIS_FF=60, DP16KD=1,
                                         MULT18X18D=2, TRELLIS_DPR16X4=3)}}
    blocks = block_utilization(STAT, flat)
    assert blocks["core"] == "core"
    assert blocks["blocks"] == {
        "fifo": _cells(lut=14, ff=7, ebr=1, lutram=3),      # a CCU2C is two LUT4s
        "mac": _cells(ff=8, dsp=2),                          # two instances
        "(own logic)": _cells(lut=5),
        "(board top)": _cells(lut=3, ff=42),                 # top's own and the clocking's
    }
    assert blocks["total"] == _cells(lut=22, ff=57, dsp=2, ebr=1, lutram=3)
    assert all(sum(b[c] for b in blocks["blocks"].values()) == blocks["total"][c]
               for c in blocks["total"])
    assert blocks["flat_total"] == _cells(lut=19, ff=60, dsp=2, ebr=1, lutram=3)
    assert "flat_total" not in block_utilization(STAT)


def test_summary_prints_the_blocks_or_why_not():
    report = {"design": "x", "board": "b", "device": {"part": "P", "speed": "6", "package": "Q"},
              "clock": {"target_mhz": 25, "requested_mhz": 25, "oscillator_mhz": 25},
              "fmax": {}, "utilization": {}, "peak_throughput": {},
              "wall_time_s": {"total": 1.0, "synth": 0.5, "blocks": 0.7},
              "blocks": {**block_utilization(STAT), "log": "blocks.log"}}
    text = summarize(report, "r.json")
    assert "  blocks  of core (Yosys cells before packing, boundaries kept)" in text
    rows = [line.split() for line in text.splitlines()]
    assert ["LUT4", "FF", "DSP", "EBR", "LUTRAM"] in rows
    assert ["fifo", "14", "7", "0", "1", "3"] in rows
    assert ["total", "22", "57", "2", "1", "3"] in rows
    report["blocks"] = {"error": "ERROR: out of memory", "log": "blocks.log"}
    assert "  blocks  not available: ERROR: out of memory (log: blocks.log)" in \
        summarize(report, "r.json")


def test_real_build_reports_blocks(tmp_path):
    config = StreamFIFOConfig(width=8, depth=64)
    report = build_bitstream(get_design("stream-fifo"), config, get_board("ulx3s-25f"),
                             out_dir=tmp_path, progress=False)
    blocks = report["blocks"]
    assert blocks["core"] == "core" and set(blocks["blocks"]) == {"fifo", "(own logic)",
                                                                  "(board top)"}
    assert blocks["blocks"]["fifo"]["LUT4"] > 0 and blocks["blocks"]["fifo"]["LUTRAM"] > 0
    # The harness's shift chain and fold tree are flip-flops of the board top.
    assert blocks["blocks"]["(board top)"]["FF"] >= report["harness"]["input_bits"]
    assert blocks["total"]["FF"] == blocks["flat_total"]["FF"] == \
        report["utilization"]["TRELLIS_FF"]["used"]
    assert blocks["total"]["LUT4"] == pytest.approx(blocks["flat_total"]["LUT4"], rel=0.3)
    assert report["wall_time_s"]["blocks"] > 0 and "blocks.log" in report["artifacts"]["logs"]
    assert "  blocks  of core" in summarize(report, tmp_path / "report.json")
