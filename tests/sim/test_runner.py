# amaranth: UnusedElaboratable=no
"""The simulator runner's choices and errors."""

import shutil

import pytest

from hw.lib.block_configs import StreamFIFOConfig
from hw.lib.stream import StreamFIFO
from sim.runner import SimulationFailure, default_simulator, run


def test_default_is_verilator(monkeypatch):
    monkeypatch.delenv("ACCELFORGE_SIM", raising=False)
    assert default_simulator() == "verilator"


def test_unknown_simulator_is_named(monkeypatch):
    monkeypatch.setenv("ACCELFORGE_SIM", "modelsim")
    with pytest.raises(ValueError, match="ACCELFORGE_SIM='modelsim' is not valid: expected one "
                                         "of verilator, icarus"):
        default_simulator()


def test_missing_icarus_says_how_to_get_it(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    config = StreamFIFOConfig(width=4, depth=4)
    with pytest.raises(SimulationFailure, match="iverilog is not on PATH"):
        run(StreamFIFO(4, depth=4), name="stream_fifo", testbench="sim.tb.stream_fifo",
            config=config, simulator="icarus")


@pytest.mark.skipif(shutil.which("iverilog") is None,
                    reason="Icarus Verilog is optional and not installed (apt-get install iverilog)")
def test_icarus_runs_the_same_testbench():
    config = StreamFIFOConfig(width=6, depth=3)
    assert run(StreamFIFO(6, depth=3), name="stream_fifo", testbench="sim.tb.stream_fifo",
               config=config, simulator="icarus", seed=3) == 3
