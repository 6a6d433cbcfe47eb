# amaranth: UnusedElaboratable=no
"""KVCacheEngine in amaranth.sim against golden KVCache under golden LaCache (clean mode) or
StreamingLLM: every response of every READ (row, logical position, last flag, status) and the
error flags, under random stalls, in streaming decode and through prefills.

:func:`make_session` (commands and expected responses as packed words) is shared with the
cocotb test, which runs the same sessions on the emitted Verilog.
"""

import random

import pytest
import torch
from amaranth.lib import data
from amaranth.sim import Simulator

from golden.kv_cache import KVCache
from golden.lacache import make_policy
from hw.kv.cache import KVCacheEngine, Op, Status, command_layout, error_layout, response_layout
from hw.kv.config import KVConfig
from sim.pysim_stream import stream_get, stream_put


def _word(layout, fields):
    """Pack ``fields`` (a mapping; nested layouts as mappings, enums by value) like ``layout``."""
    word = 0
    for name, value in fields.items():
        field = layout[name]
        if isinstance(value, dict):
            value = _word(field.shape, value)
        word |= int(getattr(value, "value", value)) << field.offset
    return word


def _rows(config, k, v):
    """Row dicts of ``(kv_heads, n, head_dim)`` integer K and V, one per token."""
    if not k.shape[1]:
        return []

    def pack(t):
        flat = t.permute(1, 0, 2).reshape(t.shape[1], -1).tolist()
        return [sum(e << (n * config.elem_bits) for n, e in enumerate(r)) for r in flat]
    return [{"k": a, "v": b} for a, b in zip(pack(k), pack(v))]


class _Session:
    """Commands and the golden answers, step by step. The rows of the tokens appended since the
    last compaction (the open prefill, the step in progress included) wait in ``open``, per
    layer, and enter the golden cache as one block at the ``COMMIT`` that compacts them."""

    def __init__(self, config, seed):
        self.config = config
        self.rng = random.Random(seed)
        self.gen = torch.Generator().manual_seed(seed)
        self.cmd_layout, self.rsp_layout = command_layout(config), response_layout(config)
        self.cache = KVCache(config.layers, config.kv_heads, config.head_dim,
                             make_policy(config, exact=False), dtype=torch.int64)
        self.commands, self.expected = [], []
        self.errors = dict.fromkeys(error_layout().members, 0)
        self.written = set()
        self.open = [[] for _ in range(config.layers)]
        self.appended = 0

    def cmd(self, op, layer=0, row=None):
        self.commands.append(_word(self.cmd_layout,
                                   {"op": op, "layer": layer, "row": row or {"k": 0, "v": 0}}))

    def respond(self, status, pos=0, last=1, row=None):
        self.expected.append(_word(self.rsp_layout,
                                   {"status": status, "last": last, "pos": pos,
                                    "row": row or {"k": 0, "v": 0}}))

    def write(self, layer):
        cfg = self.config
        shape = (cfg.kv_heads, 1, cfg.head_dim)
        k, v = (torch.randint(0, 1 << cfg.elem_bits, shape, dtype=torch.int64,
                              generator=self.gen) for _ in "kv")
        self.cmd(Op.WRITE, layer, _rows(cfg, k, v)[0])
        if layer in self.written:
            self.errors["duplicate_write"] = 1
        else:
            self.open[layer].append((k, v))
            self.written.add(layer)

    def read(self, layer):
        self.cmd(Op.READ, layer)
        if layer >= self.config.layers:
            return self.respond(Status.BAD_LAYER)
        k, v, _ = self.cache.read(layer)
        rows = _rows(self.config, k, v) + [_rows(self.config, a, b)[0]
                                           for a, b in self.open[layer]]
        if not rows:
            return self.respond(Status.EMPTY)
        for j, row in enumerate(rows):
            self.respond(Status.ROW, j, int(j == len(rows) - 1), row)

    def append(self):
        """``APPEND``; whether the step was closed."""
        self.cmd(Op.APPEND)
        if len(self.written) < self.config.layers:
            self.errors["missing_write"] = 1
            return False
        if self.cache.length(0) + self.appended > self.config.rows_per_layer - 2:
            self.errors["overflow"] = 1
            return False
        self.appended += 1
        self.written.clear()
        return True

    def commit(self):
        self.cmd(Op.COMMIT)
        if len(self.written) < self.config.layers:
            self.errors["missing_write"] = 1
            return
        for i, rows in enumerate(self.open):
            self.cache.append(i, torch.cat([k for k, _ in rows], dim=1),
                              torch.cat([v for _, v in rows], dim=1))
        self.cache.compact()
        self.open = [[] for _ in range(self.config.layers)]
        self.appended = 0
        self.written.clear()


def make_session(config, *, steps=None, blocks=None, seed, read_every=1, errors=False):
    """Commands and expected responses of ``steps`` decode steps, or of ``blocks``: per block,
    a prefill of that many tokens (1: a decode step).

    Each token writes every layer in a random order; a block's tokens but its last are closed
    with ``APPEND`` (the first one the memory cannot take is rejected with ``overflow``, and the
    block is then closed there), its last with ``COMMIT``. Every ``read_every`` blocks all
    layers are read back, and one random layer is read in the middle of the writes of a block's
    first and last tokens (so reads of a half-written step and of an open prefill are checked).
    With ``errors``, invalid commands are mixed in: bad opcodes and layers, duplicate writes,
    early commits and appends, reads of an empty cache.

    Returns ``{"commands": [int], "expected": [int], "errors": int, "last_read": int}``:
    packed words, and how many responses the final command (a READ) yields.
    """
    blocks = [1] * steps if blocks is None else blocks
    s = _Session(config, seed)
    rng = s.rng
    L = config.layers
    bad_layer = (1 << L.bit_length()) - 1
    s.read(0)                                       # empty
    for step, size in enumerate(blocks):
        for token in range(size):
            order = rng.sample(range(L), L)
            for n, layer in enumerate(order):
                s.write(layer)
                if n == L // 2 and step % read_every == 0 and token in (0, size - 1):
                    s.read(rng.randrange(L))
                if errors and rng.random() < 0.02:
                    s.write(rng.choice(sorted(s.written)))
                if errors and rng.random() < 0.02:
                    (s.commit if rng.random() < 0.5 else s.append)()   # early: rejected
            if errors and step % 3 == 0 and token == 0:
                s.cmd(Op.WRITE, bad_layer)
                s.errors["bad_layer"] = 1
                s.read(bad_layer)
                s.cmd(4 + rng.randrange(4))     # no opcode
                s.errors["bad_op"] = 1
            if token == size - 1 or not s.append():
                break
        s.commit()
        if step % read_every == 0 or step == len(blocks) - 1:
            for layer in range(L):
                before = len(s.expected)
                s.read(layer)
    return {"commands": s.commands, "expected": s.expected,
            "errors": _word(error_layout(), s.errors), "last_read": len(s.expected) - before}


def small(**kw):
    return KVConfig(kv_heads=kw.pop("kv_heads", 1), head_dim=kw.pop("head_dim", 2),
                    elem_bits=kw.pop("elem_bits", 8), **kw)


def run_pysim(config, session, *, stall=0.3, seed=0):
    dut = KVCacheEngine(config=config)
    rng = random.Random(seed)
    got = []

    async def producer(ctx):
        for word in session["commands"]:
            await stream_put(ctx, dut.cmd, data.Const(command_layout(config), word), rng=rng,
                             stall=stall)

    async def consumer(ctx):
        for _ in session["expected"]:
            got.append((await stream_get(ctx, dut.rsp, rng=rng, stall=stall)).as_value().value)
        for _ in range(10):
            await ctx.tick()
        assert not ctx.get(dut.rsp.valid), "more responses than expected"
        assert ctx.get(dut.errors).as_value().value == session["errors"]

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer, background=True)
    sim.add_testbench(consumer)
    sim.run()
    for n, (g, e) in enumerate(zip(got, session["expected"])):
        assert g == e, f"response {n}: got {g:#x}, expected {e:#x}"


CONFIGS = [
    small(layers=6, budget=20, sinks=2, span=2, overlap=0),
    small(layers=5, budget=14, sinks=0, span=2, overlap=1, kv_heads=2, elem_bits=5),
    small(layers=9, budget=22, sinks=3, span=3, overlap=1, head_dim=3, elem_bits=16),
]


STREAMING = [
    small(policy="streaming", layers=5, budget=9, sinks=2, kv_heads=2, elem_bits=5),
    small(policy="streaming", layers=3, budget=4, sinks=0),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"L{c.layers}-C{c.budget}")
def test_engine_matches_golden(config):
    room = config.capacity - config.sinks - config.layers
    steps = config.capacity + config.R * (2 * (room // config.A) + 4)     # two start-overs
    run_pysim(config, make_session(config, steps=steps, seed=config.layers, read_every=3,
                                   errors=True))


@pytest.mark.parametrize("config", STREAMING, ids=lambda c: f"L{c.layers}-C{c.budget}")
def test_streaming_engine_matches_golden(config):
    run_pysim(config, make_session(config, steps=3 * config.budget + 5, seed=config.budget,
                                   read_every=2, errors=True))


def test_engine_rejects_bad_parameters():
    with pytest.raises(TypeError, match="KVCacheEngine.config must be a KVConfig"):
        KVCacheEngine(config={"layers": 4})
    with pytest.raises(ValueError, match="fifo_depth=2 is out of range: expected 3"):
        KVCacheEngine(config=CONFIGS[0], fifo_depth=2)
    engine = KVCacheEngine(config=CONFIGS[0], fifo_depth=6)
    assert (engine.config, engine.fifo_depth) == (CONFIGS[0], 6)
