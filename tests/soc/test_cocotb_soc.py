"""The SoC's emitted Verilog in cocotb, driven through its UART pins by the host code of sw.soc
(sim.cocotb_uart puts sw.device on the pins): GEMMs and KV-cache steps give the golden results."""

import torch

from golden.gemm import matmul_int, requantize
from golden.kv_cache import KVCache
from golden.lacache import LaCache
from hw.soc.config import SoCConfig
from hw.soc.soc import SoC
from sim.runner import run

CONFIG = SoCConfig(clock_hz=1_000_000, baud=250_000, idle_timeout_us=200, max_words=64,
                   gemm_rows=3, gemm_cols=2, kv_layers=17)


def _gemm_jobs(config, gen):
    jobs = []
    for m, k, n in [(6, 7, 5), (1, 1, 1)]:
        a = torch.randint(-128, 128, (m, k), generator=gen)
        w = torch.randint(-128, 128, (k, n), generator=gen)
        mult = torch.randint(1, 1 << 15, (n,), generator=gen)
        shift = torch.randint(18, 24, (n,), generator=gen)
        relu = bool(m % 2)
        want = requantize(matmul_int(a, w), mult, shift, rounding=config.gemm.rounding,
                          relu=relu)
        jobs.append({"a": a.tolist(), "w": w.tolist(), "multiplier": mult.tolist(),
                     "shift": shift.tolist(), "relu": relu, "expected": want.tolist()})
    return jobs


def _kv_session(config, gen, steps):
    kv = config.kv
    golden = KVCache(kv.layers, kv.kv_heads, kv.head_dim, LaCache.from_config(kv),
                     dtype=torch.int64)
    shape = (kv.kv_heads, 1, kv.head_dim)
    all_rows = []
    for _ in range(steps):
        rows = []
        for layer in range(kv.layers):
            k, v = (torch.randint(0, 1 << kv.elem_bits, shape, generator=gen) for _ in "kv")
            golden.append(layer, k, v)
            rows.append([k.flatten().tolist(), v.flatten().tolist()])
        golden.compact()
        all_rows.append(rows)
    reads = {}
    for layer in (0, 8, kv.layers - 1):
        k, v, pos = golden.read(layer)
        reads[str(layer)] = [[p, k[:, j].flatten().tolist(), v[:, j].flatten().tolist()]
                             for j, p in enumerate(pos.tolist())]
    return all_rows, reads


def test_soc_through_the_uart():
    gen = torch.Generator().manual_seed(7)
    soc = SoC(config=CONFIG)
    steps, reads = _kv_session(CONFIG, gen, steps=3)
    vectors = {"address_map": soc.address_map(), "gemm": _gemm_jobs(CONFIG, gen),
               "kv_steps": steps, "kv_reads": reads}
    assert run(soc, name="soc", testbench="sim.tb.soc_host", config=CONFIG, vectors=vectors,
               design_name="soc", seed=1) == 1
