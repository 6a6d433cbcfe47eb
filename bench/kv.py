"""KV-cache engine figures (LaCache, and StreamingLLM for comparison): compaction cycles per
decode step and per prefill against C and L (measured in amaranth.sim, checked against golden
LaCache (clean mode for prefills) or StreamingLLM and KVCache while measuring), KV bytes moved
per token, slot-table bits, build figures and tokens/s at the achieved fmax.

    python -m bench.kv [--report build/ulx3s-85f-kv-lacache/report.json]
"""

import argparse
import json
import statistics
from pathlib import Path

from golden.lacache import make_policy
from hw.kv.config import KVConfig
from hw.kv.designs import (KVEngineConfig, peak_throughput, prefill_commit_cycles,
                           update_cycles_per_token)
from hw.kv.policy import compaction_window
from sim.kv_slot_stream import golden_calls, run_prefill, run_stream


def measured_commit_cycles(config):
    """(max, mean) slot-table cycles per commit once the cache is full, over two ladder passes
    (two start-overs included; 64 steps under StreamingLLM), from the simulated slot table.
    The engine adds one cycle per ``COMMIT`` (:func:`hw.kv.designs.commit_cycles`)."""
    if config.policy == "lacache":
        room = config.capacity - config.sinks - config.layers
        tokens = config.capacity + 1 + config.R * (2 * (room // config.A) + 3)
    else:
        tokens = config.capacity + 64
    cycles = run_stream(config, tokens, check_every=97)[config.capacity:]
    return max(cycles), statistics.mean(cycles)


def split_prefill(config):
    """Tokens that, from an empty cache, need two start-overs (the released code's ``T = 2``):
    ``capacity + 2 * F1 + 1``, ``F1 = (room0 // A) * R``."""
    F1 = (config.capacity - config.sinks - config.layers) // config.A * config.R
    return config.capacity + 2 * F1 + 1


def prefill_figures(config, tokens):
    """(measured slot-table and indexer cycles, engine COMMIT cycles from the model, entries
    freed) of a prefill of ``tokens`` into an empty cache."""
    config = config.replace(max_prefill=tokens)
    (measured,) = run_prefill(config, [tokens])
    ((_, passes),) = golden_calls(config, [tokens])
    lists = make_policy(config, exact=False).step(tokens)
    freed = tokens - len(lists[0]) if lists else 0
    return measured, prefill_commit_cycles(config, passes), freed


def released_classes(config, T):
    """Distinct per-layer lists after the released code's start-over with ``T``: layer ``i``'s
    depends on ``(i % (R + 1), i % (R2 + 1))``, ``R2 = R + (T - 1) * (B - 1)``."""
    R2 = config.R + (T - 1) * (config.B - 1)
    return len({(i % (config.R + 1), i % (R2 + 1)) for i in range(config.layers)})


def linked_table_bits(config):
    """Next and skip link memories (rows + 2 nodes, sentinels included) and free queues (rings
    of ``2**slot_bits`` rows) of every class."""
    node_bits = (config.rows_per_layer + 1).bit_length()
    return config.classes * (2 * (config.rows_per_layer + 2) * node_bits
                             + (config.slot_bits << config.slot_bits))


def gather_bytes_per_token(config):
    """What the released code copies per token: every kept row of K and V of every layer."""
    return config.budget * config.layers * 2 * config.kv_heads * config.head_dim * config.elem_bits // 8


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path,
                        default=Path("build/ulx3s-85f-kv-lacache/report.json"))
    args = parser.parse_args(argv)

    print("Compaction work per decode step (slot-table cycles per commit, measured in simulation;"
          " model = engine cycles per token)")
    print(f"{'L':>3} {'C':>5} {'S/O':>5} {'B':>2} {'A':>2} {'R':>2} {'max':>4} {'mean/token':>10} "
          f"{'model/token (update)':>20}")
    sweep = [KVConfig(layers=32, budget=c, sinks=4, span=8, overlap=4) for c in (64, 128, 256, 512)]
    sweep += [KVConfig(layers=32, budget=256, sinks=4, span=16, overlap=0),
              KVConfig(layers=24, budget=256, sinks=4, span=9, overlap=7),
              KVConfig(layers=28, budget=256, sinks=4, span=14, overlap=0),
              KVConfig(layers=16, budget=256, sinks=4, span=4, overlap=0),
              KVConfig(layers=8, budget=256, sinks=4, span=2, overlap=0)]
    sweep += [KVConfig(layers=32, budget=c, sinks=4, policy="streaming") for c in (64, 256)]
    for cfg in sweep:
        worst, mean = measured_commit_cycles(cfg)
        B, A, R = compaction_window(cfg)
        shape = f"{cfg.span:>2}/{cfg.overlap:<2}" if cfg.policy == "lacache" else "  SLLM"
        print(f"{cfg.layers:>3} {cfg.budget:>5} {shape} {B:>2} {A:>2} {R:>2} {worst:>4} "
              f"{mean:>10.2f} {update_cycles_per_token(cfg):>20.2f}")

    print("\nPrefill compaction (one COMMIT after the APPENDs of a prefill into an empty cache; "
          "table = slot tables and indexer measured in simulation, engine = cycle model, "
          "checked against simulation in tests)")
    print(f"{'L':>3} {'C':>5} {'S/O':>5} {'B':>2} {'R':>2} {'tokens':>6} {'freed':>6} {'table':>6} "
          f"{'engine':>6} {'per freed':>9} {'2B/R':>5}")
    prefills = [KVConfig(layers=32, budget=c, sinks=4, span=8, overlap=4) for c in (64, 128, 256)]
    prefills += [KVConfig(layers=32, budget=256, sinks=4, span=16, overlap=0),
                 KVConfig(layers=24, budget=256, sinks=4, span=9, overlap=7),
                 KVConfig(layers=28, budget=256, sinks=4, span=14, overlap=0),
                 KVConfig(layers=8, budget=256, sinks=4, span=2, overlap=0)]
    for cfg in prefills:
        for tokens in (cfg.budget + cfg.budget // 2, split_prefill(cfg)):
            measured, engine, freed = prefill_figures(cfg, tokens)
            B, _, R = compaction_window(cfg)
            per_freed = engine / max(freed, 1)
            print(f"{cfg.layers:>3} {cfg.budget:>5} {cfg.span:>2}/{cfg.overlap:<2} {B:>2} {R:>2} "
                  f"{tokens:>6} {freed:>6} {measured:>6} {engine:>6} {per_freed:>9.2f} "
                  f"{2 * B / R:>5.2f}")

    print("\nLayer classes: clean mode (what the slot tables hold, every prefill) and the released "
          "code's after a start-over with T = 2, 3, 4 (exact mode; for A >= 2 also duplicate "
          "indices, which no slot list can hold)")
    for cfg in prefills[2:6]:
        released = ", ".join(str(released_classes(cfg, T)) for T in (2, 3, 4))
        print(f"  L={cfg.layers} S/O={cfg.span}/{cfg.overlap} (A={cfg.A}): {cfg.classes}; "
              f"released {released}")

    print("\nKV bytes moved per token (32 layers, C = 256, S/O = 8/4)")
    for name, cfg in (("model rows (8 heads x 128 x 16 bit)",
                       KVConfig(layers=32, budget=256, sinks=4, span=8, overlap=4)),
                      ("build rows (1 head x 2 x 16 bit)",
                       KVEngineConfig(layers=32, budget=256, sinks=4, span=8, overlap=4))):
        print(f"  {name}: hardware 0 (each row written once, never moved); released "
              f"gather-copy {gather_bytes_per_token(cfg):,} B/token")

    print("\nSlot tables (bits)")
    for cfg in sweep[2:6]:
        print(f"  L={cfg.layers} C={cfg.budget} S/O={cfg.span}/{cfg.overlap}: {cfg.classes} "
              f"classes, linked + skip lists and free queues {linked_table_bits(cfg):,}; a flat "
              f"table per class would be {cfg.slot_table_bits:,}; per layer instead of per class "
              f"{cfg.layers * (cfg.rows_per_layer + 1) * cfg.rows_per_layer.bit_length():,}")

    print()
    if not args.report.exists():
        print(f"no build report at {args.report}: build with python -m hw.build --design "
              f"kv-lacache --board ulx3s-85f --freq 150")
        return 0
    report = json.loads(args.report.read_text())
    cfg = KVEngineConfig.from_dict(report["config"])
    util = report["utilization"]
    fmax = min(v["achieved_mhz"] for v in report["fmax"].values())
    print(f"Build {report['board']} ({report['device']['part']}), L={cfg.layers} C={cfg.budget} "
          f"S/O={cfg.span}/{cfg.overlap}, row {2 * cfg.kv_heads * cfg.head_dim * cfg.elem_bits} "
          f"bits, requested {report['clock']['requested_mhz']} MHz")
    for cell in ("TRELLIS_COMB", "TRELLIS_FF", "DP16KD", "TRELLIS_RAMW", "MULT18X18D"):
        if cell in util:
            print(f"  {cell}: {util[cell]['used']}/{util[cell]['available']}")
    print(f"  policy {cfg.policy}, fmax {fmax:.1f} MHz "
          f"(timing {'met' if report['timing_met'] else 'NOT met'})")
    for name, value in peak_throughput(cfg, fmax * 1e6).items():
        print(f"  {name}: {value:,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
