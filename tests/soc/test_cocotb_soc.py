"""The SoC's emitted Verilog in cocotb, driven through its UART pins by the host code of sw.soc
(sim.cocotb_uart puts sw.device on the pins): GEMMs, KV-cache steps (a prefill among them) and
GBU tiles give the golden results."""

import torch

from golden.gemm import matmul_int, requantize
from golden.kv_cache import KVCache
from golden.lacache import LaCache
from golden.splat_binning import bin_splats
from golden.splat_preprocess import preprocess
from golden.splat_scenes import synthetic_scene
from hw.soc.config import SoCConfig
from hw.soc.soc import SoC
from sim.gbu_vectors import tile_case
from sim.runner import run

CONFIG = SoCConfig(clock_hz=1_000_000, baud=250_000, idle_timeout_us=200, max_words=64,
                   gemm_rows=3, gemm_cols=2, kv_layers=17, gbu_lanes=1)


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


def _kv_session(config, gen, steps, prefill):
    """``steps`` tokens, the first ``prefill`` appended without compaction: a prefill of
    ``prefill + 1`` tokens closed by one compaction (one block for the golden cache), then
    decode steps."""
    kv = config.kv
    golden = KVCache(kv.layers, kv.kv_heads, kv.head_dim, LaCache.from_config(kv),
                     dtype=torch.int64)
    tokens = [[[torch.randint(0, 1 << kv.elem_bits, (kv.kv_heads, 1, kv.head_dim), generator=gen)
                for _ in "kv"] for _ in range(kv.layers)] for _ in range(steps)]
    for block in (tokens[:prefill + 1], *([t] for t in tokens[prefill + 1:])):
        for layer in range(kv.layers):
            golden.append(layer, *(torch.cat([t[layer][n] for t in block], dim=1)
                                   for n in range(2)))
        golden.compact()
    all_rows = [{"rows": [[k.flatten().tolist(), v.flatten().tolist()] for k, v in token],
                 "append": step < prefill} for step, token in enumerate(tokens)]
    reads = {}
    for layer in (0, 8, kv.layers - 1):
        k, v, pos = golden.read(layer)
        reads[str(layer)] = [[p, k[:, j].flatten().tolist(), v[:, j].flatten().tolist()]
                             for j, p in enumerate(pos.tolist())]
    return all_rows, reads


def _gbu_tiles(config):
    """The tiles of a small edge-case scene (a partial border tile among them) as the GBU model
    shades them."""
    scene, camera = synthetic_scene(4, 24, 20)
    splats = preprocess(scene, camera)
    tiles = bin_splats(splats)
    cases = [tile_case(config.gbu, splats, tiles, t) for t in (0, 3)]
    return [{"splats": c["splats"], "cols": c["cols"], "rows": c["rows"],
             "pixels": c["pixels"]} for c in cases]


def test_soc_through_the_uart():
    gen = torch.Generator().manual_seed(7)
    soc = SoC(config=CONFIG)
    steps, reads = _kv_session(CONFIG, gen, steps=4, prefill=2)
    vectors = {"address_map": soc.address_map(), "gemm": _gemm_jobs(CONFIG, gen),
               "kv_steps": steps, "kv_reads": reads, "gbu": _gbu_tiles(CONFIG)}
    assert run(soc, name="soc", testbench="sim.tb.soc_host", config=CONFIG, vectors=vectors,
               design_name="soc", seed=1) == 1
