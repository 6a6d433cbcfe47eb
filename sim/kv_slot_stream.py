"""The policy's indexer and the slot table streamed in amaranth.sim, checked against golden.

After every checked decode step, the indexer's plan equals ``LaCache.plan(N)`` field by field
(under StreamingLLM: it drops exactly when ``N`` exceeds the budget), and
each class's linked list, read straight from its link memory and mapped to token ids through the
log of which row each token took, equals ``KVCache.ids(i)`` of every layer ``i`` of that class.
Used by the tests and by ``bench/kv.py``, which measures commit cycles while checking.
"""

import torch
from amaranth.hdl import Elaboratable, Module
from amaranth.sim import Simulator

from golden.kv_cache import KVCache
from golden.lacache import make_policy
from hw.kv.cache import make_indexer
from hw.kv.slot_table import SlotTable


__all__ = ["PLAN_FIELDS", "golden_ids_stream", "run_stream"]


PLAN_FIELDS = ("need", "room", "free0", "startover", "inc", "cursor", "next_cursor")


def golden_ids_stream(config, tokens):
    """Per step, the ids every layer keeps, from golden KVCache under the golden policy."""
    cache = KVCache(config.layers, 1, 1, make_policy(config))
    one = torch.zeros(1, 1, 1)
    for _ in range(tokens):
        for i in range(config.layers):
            cache.append(i, one, one)
        cache.compact()
        yield [cache.ids(i) for i in range(config.layers)]


class _Pair(Elaboratable):
    """The indexer driving the table, wired as the engine wires them."""

    def __init__(self, config):
        self.indexer = make_indexer(config)
        self.table = SlotTable(config=config)

    def elaborate(self, platform):
        m = Module()
        m.submodules.indexer, m.submodules.table = self.indexer, self.table
        ix, tb = self.indexer, self.table
        m.d.comb += [tb.drop.eq(ix.plan.drop), tb.startover.eq(ix.plan.startover),
                     tb.sink.eq(ix.sink), ix.advance.eq(tb.commit)]
        return m


def _chase(ctx, table, c, count):
    """The first ``count`` nodes of class ``c``'s list, read straight from its link memory,
    after checking that its skip links hold the same list (even and odd positions)."""
    links = table.links[c].memory
    skips = table.skips[c].memory
    nodes, node = [], table.sentinel
    for _ in range(count):
        node = ctx.get(links.data[node])
        nodes.append(node)
    chains = [table.pre_sentinel, table.sentinel]
    for j in range(count):
        chains[j % 2] = ctx.get(skips.data[chains[j % 2]])
        assert chains[j % 2] == nodes[j], f"class {c}: skip link to position {j}"
    return nodes


def run_stream(config, tokens, *, check_every=1):
    """Stream ``tokens`` tokens; compare plan and lists after every ``check_every``-th step.

    Returns the commit cycles of every step."""
    pair = _Pair(config)
    ix, table = pair.indexer, pair.table
    policy = make_policy(config)
    classes = config.classes
    cycles = []

    async def bench(ctx):
        owner = [dict() for _ in range(classes)]        # per class: row -> token id
        N = 0
        for token, ids in enumerate(golden_ids_stream(config, tokens)):
            N += 1
            got = ctx.get(ix.plan)
            if config.policy == "streaming":
                assert bool(got.active) == bool(got.drop) == (N > config.budget), f"N={N}"
            plan = policy.plan(N) if config.policy == "lacache" else None
            if config.policy == "lacache":
                assert bool(got.active) == (plan is not None), f"N={N}: active"
            if plan is not None:
                for f in PLAN_FIELDS:
                    assert int(getattr(got, f)) == int(getattr(plan, f)), \
                        f"N={N}: {f} {int(getattr(got, f))} != {getattr(plan, f)}"
                assert plan.C == config.capacity and plan.T in (0, 1)
            policy.step(N)
            for c in range(classes):
                owner[c][ctx.get(table.pending[c])] = token
            ctx.set(table.commit, 1)
            await ctx.tick()
            ctx.set(table.commit, 0)
            n = 1
            while ctx.get(table.busy):
                await ctx.tick()
                n += 1
            cycles.append(n)
            N = len(ids[0])
            assert ctx.get(ix.length) == N, f"token {token}: length"
            if token % check_every and token != tokens - 1:
                continue
            for c in range(classes):
                got_ids = [owner[c][n] for n in _chase(ctx, table, c, len(ids[c]))]
                for i in range(c, config.layers, classes):
                    assert got_ids == ids[i], f"N={N}, class {c}, layer {i}"

    sim = Simulator(pair)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return cycles
