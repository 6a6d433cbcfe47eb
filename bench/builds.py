"""FPGA builds for the benchmarks: one routed build per (design, parameters, board, target),
its figures cached in a JSON file so that a benchmark stopped halfway continues where it stopped.

A design that does not fit the board, or fails in the flow, is recorded with the flow's one-line
reason instead of figures: a benchmark row says "does not fit" rather than stopping the sweep.
"""

import json
from pathlib import Path

from boards import get_board
from hw.flow import BuildError, build_bitstream
from hw.registry import get_design


__all__ = ["BuildCache"]


def _figures(report):
    used = {cell: v["used"] for cell, v in report["utilization"].items()}
    return {
        "fmax_mhz": round(min(v["achieved_mhz"] for v in report["fmax"].values()), 1),
        "LUT": used.get("TRELLIS_COMB", 0), "FF": used.get("TRELLIS_FF", 0),
        "DSP": used.get("MULT18X18D", 0), "EBR": used.get("DP16KD", 0),
        "build_s": report["wall_time_s"]["total"],
    }


class BuildCache:
    """Routed-build figures kept in ``path`` (JSON); builds go under ``out_dir``.

    :meth:`build` returns ``{"fmax_mhz", "LUT", "FF", "DSP", "EBR", "build_s"}`` plus
    ``design``, ``params``, ``board`` and ``target_mhz``, or the same keys with ``error`` (the
    flow's reason) in place of the figures.
    """

    def __init__(self, path, out_dir):
        self._path = Path(path)
        self._out_dir = Path(out_dir)
        self._entries = json.loads(self._path.read_text()) if self._path.exists() else {}

    def build(self, name, design, params, board, target_mhz, *, seed=1):
        """Build ``design`` with ``params`` (``--param`` names and values) for ``board`` at
        ``target_mhz`` unless a build of the same key is cached; ``name`` names its folder."""
        key = json.dumps([design, params, board, target_mhz, seed], sort_keys=True)
        if key not in self._entries:
            entry = {"design": design, "params": params, "board": board,
                     "target_mhz": target_mhz, "seed": seed}
            spec = get_design(design)
            try:
                report = build_bitstream(spec, spec.config_cls(**params), get_board(board),
                                         out_dir=self._out_dir / name.replace(" ", "-"),
                                         freq_mhz=target_mhz, seed=seed)
                entry.update(_figures(report))
            except BuildError as e:
                entry["error"] = str(e)
            self._entries[key] = entry
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._path.write_text(json.dumps(self._entries, indent=2) + "\n")
        return self._entries[key]
