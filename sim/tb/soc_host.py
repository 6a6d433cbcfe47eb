"""cocotb testbench of the ``SoC`` through its UART pins: the host code of ``sw.soc`` (the same a
board is driven with) runs GEMMs on the tensor engine and steps and reads of the KV cache, and
every result must equal the golden one computed by the caller.

Ports: ``rx`` (in), ``tx`` (out). Vectors (from ``tests/soc/test_cocotb_soc.py``):
``address_map``; ``gemm``: ``[{"a", "w", "multiplier", "shift", "relu", "expected"}]``;
``kv_steps``: ``[[[k, v] per layer] per step]``; ``kv_reads``: ``{layer: [[pos, k, v], ...]}``
after the last step.
"""

import cocotb
from cocotb.task import bridge

from hw.soc.config import SoCConfig
from sim.cocotb_uart import UartTransport
from sim.cocotb_util import config_params, start_clock_and_reset, test_vectors
from sw.device import Device
from sw.soc import SoCClient


@cocotb.test()
async def host_code_gets_golden_results(dut):
    config = SoCConfig.from_dict(config_params())
    vectors = test_vectors()
    await start_clock_and_reset(dut)
    transport = UartTransport(dut, divisor=config.host.divisor, clock_hz=config.clock_hz)

    def host():
        client = SoCClient(Device(transport, max_words=config.max_words),
                           vectors["address_map"])
        for n, job in enumerate(vectors["gemm"]):
            got = client.gemm(job["a"], job["w"], job["multiplier"], job["shift"],
                              relu=job["relu"])
            assert got.tolist() == job["expected"], f"GEMM {n}: got {got.tolist()}"
        for rows in vectors["kv_steps"]:
            client.kv_step([tuple(row) for row in rows])
        for layer, want in vectors["kv_reads"].items():
            got = [[pos, k, v] for pos, k, v in client.kv_read(int(layer))]
            assert got == want, f"KV layer {layer}: got {got}, expected {want}"
        assert client.signals("kv")["errors"] == 0

    await bridge(host)()
