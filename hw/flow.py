"""The ECP5 bitstream flow: elaborate, synthesize (Yosys), place and route (nextpnr), pack.

Amaranth prepares the build files; the three tool steps are run here from Amaranth's JSON command
list rather than through its shell script, so that each step shows progress, keeps its own log,
and fails with one clear line instead of a traceback.
"""

import json
import os
import re
import shlex
import subprocess
import time
from pathlib import Path

from tqdm import tqdm

from boards.toolchain import configure_environment
from .harness import PinHarness
from .lib.ecp5_pll import pll_settings


__all__ = ["BuildError", "build_bitstream"]


class BuildError(RuntimeError):
    """A build step failed; the message is one line meant for the user."""


#: Step name for each tool of Amaranth's command list.
_STEP_NAMES = {"yosys": "synth", "nextpnr-ecp5": "pnr", "ecppack": "pack"}

_UTIL_LINE = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%")


def _utilization_from_log(log_text):
    """``{cell: (used, available)}`` from nextpnr's "Device utilisation" block."""
    return {m.group(1): (int(m.group(2)), int(m.group(3)))
            for m in map(_UTIL_LINE.match, log_text.splitlines()) if m}


def _first_error(log_text):
    for line in log_text.splitlines():
        if "ERROR" in line:
            return line.strip()
    lines = [l.strip() for l in log_text.splitlines() if l.strip()]
    return lines[-1] if lines else "no output"


def _yowasp_cache_is_cold(tools):
    if not any(tool.origin == "yowasp" for tool in tools.values()):
        return False
    import platformdirs  # a dependency of yowasp-runtime, which placed the cache with it
    default = platformdirs.user_cache_dir("YoWASP", appauthor=False)
    return not Path(os.environ.get("YOWASP_CACHE_DIR", default)).exists()


def _run_step(step, argv, cwd, log_path, bar):
    start = time.monotonic()
    with open(log_path, "w") as log:
        log.write("$ " + shlex.join(argv) + "\n")
        log.flush()
        proc = subprocess.Popen(argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        while True:
            try:
                code = proc.wait(timeout=1.0)
                break
            except subprocess.TimeoutExpired:
                bar.set_postfix_str(f"{step} {time.monotonic() - start:.0f} s")
    return code, time.monotonic() - start


def build_bitstream(design, config, board, *, out_dir, freq_mhz=None, seed=1, progress=True):
    """Build ``design`` with ``config`` for ``board`` into ``out_dir``; return the report dict.

    Parameters
    ----------
    freq_mhz : float or None
        Target clock. ``None`` or the oscillator's frequency: the oscillator clocks the design;
        otherwise an EHXPLLL makes the nearest frequency it can.
    seed : int
        nextpnr placement seed.

    Raises
    ------
    BuildError
        When a step fails, with the reason (e.g. the cells that do not fit) and the log's path.
    """
    started = time.monotonic()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tools = configure_environment()

    osc_mhz = board.clock_hz / 1e6
    pll = None
    if freq_mhz is not None and abs(freq_mhz - osc_mhz) > 1e-9:
        try:
            pll = pll_settings(osc_mhz, freq_mhz)
        except ValueError as e:
            raise BuildError(str(e)) from None
    platform = board.platform()
    if design.board_top is not None:
        # The design's own top, on real pins; it makes the same PLL from the frequency.
        sync_hz = pll.output_mhz * 1e6 if pll else board.clock_hz
        try:
            top = design.board_top(config, platform, sync_hz)
        except ValueError as e:
            raise BuildError(f"{design.name} cannot be built for {board.name}: {e}") from None
        # The top may adapt the config to the clock (e.g. a baud divisor): report what was built.
        config = getattr(top, "config", config)
        harness = {"board_top": True,
                   "note": f"board top: {getattr(top, 'pins', 'the design uses real pins')}"}
    else:
        top = PinHarness(design.make_core(config), pll=pll)
        harness = {"input_bits": top.input_bits, "output_bits": top.output_bits,
                   "note": "inputs shift in from one pin; outputs are registered, then XOR-folded "
                           "in registered 4-input levels to one LED"}
    # --timing-allow-fail: a design that misses its target still gets its achieved fmax reported.
    plan = platform.prepare(top, name="top", nextpnr_opts=f"--report top.nextpnr.json --seed {seed} "
                                                          f"--timing-allow-fail")
    plan.extract(str(out_dir))
    (out_dir / "config.json").write_text(json.dumps(
        {"design": design.name, **json.loads(config.to_json())}, indent=2) + "\n")
    outputs = design.outputs(config) if design.outputs else {}
    for name, content in outputs.items():
        (out_dir / name).write_text(json.dumps(content, indent=2) + "\n")

    commands = json.loads((out_dir / "build_top.json").read_text())["commands"]
    step_times = {}
    with tqdm(total=len(commands), desc=f"{design.name} on {board.name}", unit="step",
              disable=not progress, leave=False) as bar:
        if _yowasp_cache_is_cold(tools):
            bar.write("first use of the YoWASP tools: compiling them to machine code (about 1-2 "
                      "minutes, once; cached in the YoWASP cache directory)")
        for argv in commands:
            step = _STEP_NAMES[argv[0]]
            argv = [tools[argv[0]].path, *argv[1:]]
            log_path = out_dir / f"{step}.log"
            code, step_times[step] = _run_step(step, argv, out_dir, log_path, bar)
            if code != 0:
                raise BuildError(_step_failure(step, board, log_path))
            bar.update(1)

    nextpnr = json.loads((out_dir / "top.nextpnr.json").read_text())
    utilization = {cell: {"used": v["used"], "available": v["available"]}
                   for cell, v in nextpnr["utilization"].items()}
    fmax = {clock: {"achieved_mhz": v["achieved"], "constraint_mhz": v["constraint"]}
            for clock, v in nextpnr["fmax"].items()}
    if not fmax:
        raise BuildError(f"nextpnr reported no clock for {design.name}: the design has no "
                         f"registered path (see {out_dir / 'pnr.log'})")
    system_fmax = min(v["achieved_mhz"] for v in fmax.values())
    report = {
        "design": design.name,
        "config_type": type(config).__name__,
        "config": config.to_dict(),
        "board": board.name,
        "device": {"part": board.device, "package": board.package, "speed": board.speed},
        "clock": {
            "oscillator_mhz": osc_mhz,
            "source": "pll" if pll else "oscillator",
            "requested_mhz": freq_mhz if freq_mhz is not None else osc_mhz,
            "target_mhz": pll.output_mhz if pll else osc_mhz,
            **({"pll": {"clki_div": pll.clki_div, "clkfb_div": pll.clkfb_div,
                        "clkop_div": pll.clkop_div, "vco_mhz": pll.vco_mhz}} if pll else {}),
        },
        "utilization": utilization,
        "fmax": fmax,
        "timing_met": all(v["achieved_mhz"] >= v["constraint_mhz"] for v in fmax.values()),
        "peak_throughput": (design.peak_throughput(config, system_fmax * 1e6)
                            if design.peak_throughput else {}),
        "harness": harness,
        "tools": {name: {"path": t.path, "origin": t.origin, "version": t.version()}
                  for name, t in tools.items()},
        "seed": seed,
        "wall_time_s": {"total": round(time.monotonic() - started, 2),
                        **{k: round(v, 2) for k, v in step_times.items()}},
        "artifacts": {"bitstream": "top.bit", "nextpnr_report": "top.nextpnr.json",
                      "config": "config.json", "logs": [f"{s}.log" for s in step_times],
                      **({"outputs": sorted(outputs)} if outputs else {})},
    }
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _step_failure(step, board, log_path):
    text = log_path.read_text(errors="replace")
    if step == "pnr":
        # Amaranth runs nextpnr quietly; its full log, with the utilization table, is top.tim.
        full_log = log_path.parent / "top.tim"
        full_text = full_log.read_text(errors="replace") if full_log.exists() else text
        over = {cell: ua for cell, ua in _utilization_from_log(full_text).items()
                if ua[0] > ua[1]}
        if over:
            cells = ", ".join(f"{cell} {u}/{a}" for cell, (u, a) in over.items())
            return (f"design does not fit {board.name} ({board.device}): {cells} "
                    f"(log: {full_log})")
    return f"{step} failed: {_first_error(text)} (log: {log_path})"
