"""The ECP5 bitstream flow: elaborate, synthesize (Yosys), place and route (nextpnr), pack.

Amaranth prepares the build files; the three tool steps are run here from Amaranth's JSON command
list rather than through its shell script, so that each step shows progress, keeps its own log,
and fails with one clear line instead of a traceback.
"""

import collections
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


__all__ = ["BuildError", "block_utilization", "build_bitstream"]


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


#: synth_ecp5 with LUTs mapped by abc, as it did before abc9: synth_ecp5's LUT mapper, abc9,
#: fails an internal assertion (Yosys 0.70, ``ABC_OPS_REINTEGRATE``: ``GetSize(conn.first) ==
#: GetSize(conn.second)``) on a design whose hierarchy is kept, and on some flat designs (the
#: default SoC, with its GBU, at main e3180e3; an 8-lane GBU at 75b8d14 with another lane).
#: The second part runs to synth_ecp5's end: its ``check`` step turns whitebox cell models (the
#: LUT RAM's DPR16X4C) into blackboxes, without which ``write_json`` fails.
_ABC_SYNTH = """\
synth_ecp5 -top top -run :map_luts
techmap -map +/lattice/latches_map.v
abc -lut 4
clean
synth_ecp5 -top top -run map_cells:
"""

#: Per-block utilization: a second synthesis of the same RTLIL in which the board top's children
#: (the design's core among them) and the core's children keep their boundaries; everything
#: below a block is flattened into it, so each block is optimized as a whole.
_BLOCKS_SCRIPT = "read_rtlil top.il\nsetattr -mod -set keep_hierarchy 1 {modules}\n" + \
    _ABC_SYNTH + "tee -q -o blocks.stat.json stat -json\n"

_SYNTH_ECP5 = re.compile(r"^\s*synth_ecp5\s+-top top\s*$", re.MULTILINE)


#: The LUT mappers :func:`build_bitstream` takes.
LUT_MAPPERS = ("abc9", "abc")


def _abc9_failed(out_dir):
    """After a failed synthesis: whether abc9 failed its reintegration assertion."""
    report = out_dir / "top.rpt"
    text = report.read_text(errors="replace") if report.exists() else ""
    return "ABC_OPS_REINTEGRATE" in text and \
        "GetSize(conn.first) == GetSize(conn.second)" in text


def _map_luts_with_abc(out_dir):
    """Rewrite ``top.ys`` (Amaranth's script) to map LUTs with abc."""
    script = out_dir / "top.ys"
    flow, count = _SYNTH_ECP5.subn(_ABC_SYNTH.rstrip("\n"), script.read_text())
    if count != 1:
        raise BuildError(f"{script}: expected one 'synth_ecp5 -top top' line to replace, "
                         f"found {count}")
    script.write_text(flow)


#: Levels below ``top`` whose modules keep their boundary: ``top.<core>.<block>``.
_BLOCK_DEPTH = 2

#: The per-block columns, each a weighted sum of Yosys cells (a CCU2C holds two LUT4s).
_BLOCK_COLUMNS = (("LUT4", {"LUT4": 1, "CCU2C": 2}), ("FF", {"TRELLIS_FF": 1}),
                  ("DSP", {"MULT18X18D": 1}), ("EBR", {"DP16KD": 1}),
                  ("LUTRAM", {"TRELLIS_DPR16X4": 1}))

#: Appended to the main synthesis script: the flat design's Yosys cells, to set beside the blocks'.
_FLAT_STAT = "tee -q -o top.stat.json stat -json"

_RTLIL_MODULE = re.compile(r"^module \\(\S+)$", re.MULTILINE)


def _blocks_argv(yosys, out_dir):
    """Write ``blocks.ys`` for the RTLIL in ``out_dir``; return the Yosys command that runs it."""
    modules = [name for name in _RTLIL_MODULE.findall((out_dir / "top.il").read_text())
               if name.count(".") <= _BLOCK_DEPTH]
    (out_dir / "blocks.ys").write_text(_BLOCKS_SCRIPT.format(modules=" ".join(modules)))
    return [yosys, "-q", "-l", "blocks.rpt", "blocks.ys"]


def _columns(cells):
    return {column: sum(weight * cells.get(cell, 0) for cell, weight in weights.items())
            for column, weights in _BLOCK_COLUMNS}


def _cells_by_module(stat):
    """``{module: Counter(cell type: count)}`` including submodules, from Yosys ``stat -json``."""
    own = {name.lstrip("\\"): m["num_cells_by_type"] for name, m in stat["modules"].items()}
    total = {}

    def visit(name):
        if name not in total:
            counts = collections.Counter()
            for cell, n in own[name].items():
                if cell in own:
                    counts.update({k: n * v for k, v in visit(cell).items()})
                else:
                    counts[cell] += n
            total[name] = counts
        return total[name]

    for name in own:
        visit(name)
    return own, total


def block_utilization(stat, flat_stat=None):
    """Per-block cells from the ``stat -json`` of the hierarchy-keeping synthesis.

    The design's core is the child of ``top`` with the most cells (the harness, the clocking and
    the pin buffers are small); its blocks are its children. ``(own logic)`` is what the core
    holds outside them, ``(board top)`` the rest of ``top``, so the rows add up to ``total``.

    Parameters
    ----------
    stat : dict
        Yosys ``stat -json`` of the design synthesized with ``top.<core>.<block>`` boundaries.
    flat_stat : dict or None
        Yosys ``stat -json`` of the flat synthesis the bitstream came from, for ``flat_total``.
    """
    own, total = _cells_by_module(stat)
    children = lambda name: {cell: n for cell, n in own[name].items() if cell in own}
    core = max(children("top"), key=lambda name: sum(_columns(total[name]).values()))
    blocks = {child[len(core) + 1:]: {k: n * v for k, v in _columns(total[child]).items()}
              for child, n in children(core).items()}
    blocks["(own logic)"] = _columns({c: n for c, n in own[core].items() if c not in own})
    core_cells, top_cells = _columns(total[core]), _columns(total["top"])
    blocks["(board top)"] = {k: top_cells[k] - core_cells[k] for k in top_cells}
    result = {"core": core[len("top."):], "blocks": blocks, "total": top_cells}
    if flat_stat is not None:
        result["flat_total"] = _columns(_cells_by_module(flat_stat)[1]["top"])
    return result


def _blocks_report(out_dir, code):
    log = "blocks.log"
    stat_path = out_dir / "blocks.stat.json"
    if code != 0 or not stat_path.exists():
        return {"error": _first_error((out_dir / log).read_text(errors="replace")), "log": log}
    flat_path = out_dir / "top.stat.json"
    flat = json.loads(flat_path.read_text()) if flat_path.exists() else None
    return {**block_utilization(json.loads(stat_path.read_text()), flat), "log": log,
            "method": "Yosys cells per block, before packing, from a second synthesis that keeps "
                      "the block boundaries (LUT4 counts a CCU2C as two)"}


def _yowasp_cache_is_cold(tools):
    if not any(tool.origin == "yowasp" for tool in tools.values()):
        return False
    import platformdirs  # a dependency of yowasp-runtime, which placed the cache with it
    default = platformdirs.user_cache_dir("YoWASP", appauthor=False)
    return not Path(os.environ.get("YOWASP_CACHE_DIR", default)).exists()


class _Step:
    """A tool running with its output in a log file; :attr:`seconds` is its run time once
    :meth:`poll` has seen it end."""

    def __init__(self, argv, cwd, log_path):
        self._log = open(log_path, "w")
        self._log.write("$ " + shlex.join(argv) + "\n")
        self._log.flush()
        self.proc = subprocess.Popen(argv, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT)
        self._start = time.monotonic()
        self.seconds = None

    def poll(self, timeout=0.0):
        """True once the tool has ended, waiting at most ``timeout`` seconds for it."""
        if self.seconds is None:
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return False
            self.seconds = time.monotonic() - self._start
            self._log.close()
        return True

    def elapsed(self):
        return time.monotonic() - self._start


def _wait(step, running, bar, background=()):
    """Wait for ``running`` (named ``step``), noting when each ``background`` step ends."""
    while not running.poll(timeout=1.0):
        for other in background:
            other.poll()
        bar.set_postfix_str(f"{step} {running.elapsed():.0f} s")
    for other in background:
        other.poll()


def build_bitstream(design, config, board, *, out_dir, freq_mhz=None, seed=1, progress=True,
                    blocks=True, lut_mapper="abc9"):
    """Build ``design`` with ``config`` for ``board`` into ``out_dir``; return the report dict.

    Parameters
    ----------
    freq_mhz : float or None
        Target clock. ``None`` or the oscillator's frequency: the oscillator clocks the design;
        otherwise an EHXPLLL makes the nearest frequency it can.
    seed : int
        nextpnr placement seed.
    blocks : bool
        Also synthesize the design with its blocks' boundaries kept, alongside the flow, for the
        report's ``blocks`` (see :func:`block_utilization`). A failure there is reported in
        ``blocks`` and does not fail the build.
    lut_mapper : str
        ``"abc9"`` (synth_ecp5's default, timing-driven) or ``"abc"``. When abc9 fails its
        reintegration assertion, synthesis runs again with abc; the report's ``lut_mapper``
        says which mapper ran.

    Raises
    ------
    BuildError
        When a step fails, with the reason (e.g. the cells that do not fit) and the log's path.
    """
    if lut_mapper not in LUT_MAPPERS:
        raise BuildError(f"lut_mapper={lut_mapper!r}: expected one of {', '.join(LUT_MAPPERS)}")
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
                   "note": "inputs shift in from one pin, each through a landing register; "
                           "outputs are registered, then XOR-folded in registered 4-input levels "
                           "to one LED"}
    # --timing-allow-fail: a design that misses its target still gets its achieved fmax reported.
    plan = platform.prepare(top, name="top", nextpnr_opts=f"--report top.nextpnr.json --seed {seed} "
                                                          f"--timing-allow-fail",
                            script_after_synth=_FLAT_STAT)
    plan.extract(str(out_dir))
    (out_dir / "config.json").write_text(json.dumps(
        {"design": design.name, **json.loads(config.to_json())}, indent=2) + "\n")
    outputs = design.outputs(config) if design.outputs else {}
    for name, content in outputs.items():
        (out_dir / name).write_text(json.dumps(content, indent=2) + "\n")

    if lut_mapper == "abc":
        _map_luts_with_abc(out_dir)
    commands = json.loads((out_dir / "build_top.json").read_text())["commands"]
    step_times = {}
    with tqdm(total=len(commands) + blocks, desc=f"{design.name} on {board.name}", unit="step",
              disable=not progress, leave=False) as bar:
        if _yowasp_cache_is_cold(tools):
            bar.write("first use of the YoWASP tools: compiling them to machine code (about 1-2 "
                      "minutes, once; cached in the YoWASP cache directory)")
        # Concurrent with the flow, whose tools are single-threaded: it costs a core, not time.
        background = ([_Step(_blocks_argv(tools["yosys"].path, out_dir), out_dir,
                             out_dir / "blocks.log")] if blocks else [])
        try:
            for argv in commands:
                step = _STEP_NAMES[argv[0]]
                argv = [tools[argv[0]].path, *argv[1:]]
                log_path = out_dir / f"{step}.log"
                running = _Step(argv, out_dir, log_path)
                _wait(step, running, bar, background)
                if running.proc.returncode != 0 and step == "synth" and \
                        lut_mapper == "abc9" and _abc9_failed(out_dir):
                    _map_luts_with_abc(out_dir)
                    bar.write("Yosys abc9 failed its reintegration assertion on this design: "
                              "synthesizing again with LUTs mapped by abc")
                    lut_mapper = "abc (abc9 failed)"
                    seconds = running.seconds
                    running = _Step(argv, out_dir, log_path)
                    _wait(step, running, bar, background)
                    running.seconds += seconds
                step_times[step] = running.seconds
                if running.proc.returncode != 0:
                    raise BuildError(_step_failure(step, board, log_path))
                bar.update(1)
        except BaseException:
            for other in background:
                other.proc.kill()
                other.poll(timeout=None)
            raise
        for other in background:
            _wait("blocks", other, bar)
            step_times["blocks"] = other.seconds
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
        **({"blocks": _blocks_report(out_dir, background[0].proc.returncode)}
           if blocks else {}),
        "tools": {name: {"path": t.path, "origin": t.origin, "version": t.version()}
                  for name, t in tools.items()},
        "seed": seed,
        "lut_mapper": lut_mapper,
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
