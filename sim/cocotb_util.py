"""Small helpers shared by the cocotb testbenches in ``sim/tb``."""

import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge


__all__ = ["start_clock_and_reset", "config_params", "test_vectors", "test_rng"]


async def start_clock_and_reset(dut, *, cycles=2, period_ns=10):
    """Start ``dut.clk`` and hold ``dut.rst`` (Amaranth's sync reset) for ``cycles`` edges."""
    cocotb.start_soon(Clock(dut.clk, period_ns, unit="ns").start())
    dut.rst.value = 1
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    dut.rst.value = 0


def config_params():
    """The ``params`` of the config the runner passed in ``ACCELFORGE_CONFIG``."""
    text = os.environ.get("ACCELFORGE_CONFIG")
    if text is None:
        raise RuntimeError("ACCELFORGE_CONFIG is not set: run testbenches through sim.runner.run")
    return json.loads(text)["params"]


def test_vectors():
    """The stimuli and golden expectations the caller passed to ``sim.runner.run``."""
    path = os.environ.get("ACCELFORGE_VECTORS")
    if path is None:
        raise RuntimeError("ACCELFORGE_VECTORS is not set: pass vectors= to sim.runner.run")
    with open(path) as f:
        return json.load(f)


def test_rng(salt=""):
    """A ``random.Random`` that follows cocotb's seed (so a failing run can be replayed)."""
    return random.Random(f"{cocotb.RANDOM_SEED}:{salt}")
