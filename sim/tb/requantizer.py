"""cocotb testbench of ``Requantizer``: every output equals the golden expectation.

Ports: ``i`` (raw integer in ``src``), ``o`` (raw integer in ``dst``); latency 1 when
``registered``, else 0. Vectors: ``inputs`` and ``expected`` raw integers.
"""

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge, Timer

from hw.lib.block_configs import RequantizerConfig
from sim.cocotb_util import config_params, start_clock_and_reset, test_vectors


def _signed(value, fmt):
    return value - (1 << fmt.width) if fmt.signed and value >> (fmt.width - 1) else value


@cocotb.test()
async def matches_golden(dut):
    config = RequantizerConfig.from_dict(config_params())
    vectors = test_vectors()
    inputs, expected = vectors["inputs"], vectors["expected"]
    latency = 1 if config.registered else 0
    if latency:
        await start_clock_and_reset(dut)
    got = []
    for n in range(len(inputs) + latency):
        if n < len(inputs):
            dut.i.value = inputs[n] & ((1 << config.src.width) - 1)
        # A combinational requantizer has no clock: let its output settle instead.
        await (ReadOnly() if latency else Timer(1, "ns"))
        if n >= latency:
            got.append(_signed(int(dut.o.value), config.dst))
        if latency:
            await RisingEdge(dut.clk)
    assert len(got) == len(expected)
    mismatches = [(x, g, e) for x, g, e in zip(inputs, got, expected) if g != e]
    assert not mismatches, (f"{len(mismatches)} of {len(inputs)} outputs differ; first: "
                            f"in {mismatches[0][0]} got {mismatches[0][1]} want {mismatches[0][2]}")
