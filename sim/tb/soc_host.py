"""cocotb testbench of the ``SoC`` through its UART pins: the host code of ``sw.soc`` (the same a
board is driven with) runs GEMMs on the tensor engine, steps and reads of the KV cache and tiles
on the Gaussian Blending Unit, and every result must equal the golden one computed by the caller.

Ports: ``rx`` (in), ``tx`` (out). Vectors (from ``tests/soc/test_cocotb_soc.py``):
``address_map``; ``gemm``: ``[{"a", "w", "multiplier", "shift", "relu", "expected"}]``;
``kv_steps``: ``[{"rows": [[k, v] per layer], "append": bool} per step]``; ``kv_reads``:
``{layer: [[pos, k, v], ...]}`` after the last step; ``gbu``: ``[{"splats", "cols", "rows",
"pixels"}]`` (pixels as ``[r, g, b, T, n_contrib, n_blended]``).
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
        for step in vectors["kv_steps"]:
            client.kv_step([tuple(row) for row in step["rows"]], append=step["append"])
        for layer, want in vectors["kv_reads"].items():
            got = [[pos, k, v] for pos, k, v in client.kv_read(int(layer))]
            assert got == want, f"KV layer {layer}: got {got}, expected {want}"
        assert client.signals("kv")["errors"] == 0
        for n, tile in enumerate(vectors["gbu"]):
            got = [[*p["color"], p["t"], p["n_contrib"], p["n_blended"]]
                   for p in client.gbu_tile(tile["splats"], cols=tile["cols"], rows=tile["rows"])]
            bad = [p for p in range(len(got)) if got[p] != tile["pixels"][p]]
            assert not bad, (f"GBU tile {n} pixel {bad[0]}: got {got[bad[0]]}, expected "
                             f"{tile['pixels'][bad[0]]}")

    await bridge(host)()
