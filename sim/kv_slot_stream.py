"""The policy's indexer and the slot table streamed in amaranth.sim, checked against golden.

After every checked decode step, the indexer's plan equals ``LaCache.plan(N)`` field by field
(under StreamingLLM: it drops exactly when ``N`` exceeds the budget), and
each class's linked list, read straight from its link memory and mapped to token ids through the
log of which row each token took, equals ``KVCache.ids(i)`` of every layer ``i`` of that class.
Used by the tests and by ``bench/kv.py``, which measures commit cycles while checking.

:func:`run_prefill` does the same for prefills (tokens appended, then one compaction, as
``KVCacheEngine`` sequences them) against golden LaCache in clean mode, and measures each
prefill's compaction.
"""

import torch
from amaranth.hdl import Elaboratable, Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from golden.kv_cache import KVCache
from golden.lacache import make_policy
from hw.kv.cache import make_indexer
from hw.kv.slot_table import SlotTable


__all__ = ["PLAN_FIELDS", "golden_ids_stream", "golden_calls", "run_stream", "run_prefill"]


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


def golden_calls(config, blocks):
    """Per block, the golden compaction at the ``COMMIT`` closing it, in clean mode:
    ``(T, passes)``, ``T`` being what the released code (exact mode) would use for it (0 without
    a start-over, ``None`` when nothing is compacted) and ``passes`` the ``(stage1, windows)``
    of :func:`hw.kv.designs.prefill_commit_cycles`. Blocks are assumed to fit the memory."""
    policy, out, N = make_policy(config, exact=False), [], 0
    for size in blocks:
        N += size
        if config.policy == "streaming":
            out.append((0, [(0, N - config.budget)]) if N > config.budget else (None, []))
            N = min(N, config.budget)
            continue
        released = policy.plan(N)
        lists = policy.step(N)
        out.append((released and released.T,
                    [(p.n, p.n2) if p.startover else (0, p.n) for p in policy.passes
                     if p.need > 0]))
        N = N if lists is None else len(lists[0])
    return out


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
        wiring.connect(m, ix.op, tb.compact)
        return m


def _check_lists(ctx, config, table, owner, ids, what):
    """Each class's list, mapped to token ids through ``owner``, against every layer's ids."""
    for c in range(config.classes):
        got_ids = [owner[c][n] for n in _chase(ctx, table, c, len(ids[c]))]
        for i in range(c, config.layers, config.classes):
            assert got_ids == ids[i], f"{what}, class {c}, layer {i}"


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
            cycles.append(await _pulse(ctx, table, [table.commit]))
            await ctx.tick()        # as the engine's command decode does (SlotTable.commit)
            N = len(ids[0])
            assert ctx.get(ix.length) == N, f"token {token}: length"
            if token % check_every and token != tokens - 1:
                continue
            _check_lists(ctx, config, table, owner, ids, f"N={N}")

    sim = Simulator(pair)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return cycles


async def _pulse(ctx, table, signals):
    """Set ``signals`` for one cycle, then wait until ``table`` is idle; the cycles taken."""
    for signal in signals:
        ctx.set(signal, 1)
    await ctx.tick()
    for signal in signals:
        ctx.set(signal, 0)
    n = 1
    while ctx.get(table.busy):
        await ctx.tick()
        n += 1
    return n


def run_prefill(config, blocks):
    """Stream ``blocks`` (per block, its tokens: a prefill, or a decode step for 1) from an empty
    cache; compare the lists with golden KVCache under clean-mode LaCache (or StreamingLLM)
    after every block.

    Returns, per block of more than one token, the cycles of its compaction: from the
    ``compact`` pulse (with the last token's append) until the next token's row is allocated.
    """
    pair = _Pair(config)
    ix, table = pair.indexer, pair.table
    cache = KVCache(config.layers, 1, 1, make_policy(config, exact=False))
    cycles = []

    async def bench(ctx):
        owner = [dict() for _ in range(config.classes)]
        token = 0
        for size in blocks:
            for n in range(size):
                for c in range(config.classes):
                    owner[c][ctx.get(table.pending[c])] = token
                token += 1
                if size == 1:
                    await _pulse(ctx, table, [table.commit])
                elif n < size - 1:
                    await _pulse(ctx, table, [table.append, ix.append])
                else:
                    spent = await _pulse(ctx, table, [table.append, table.hold, ix.append,
                                                      ix.compact])
                    while ctx.get(ix.busy) or ctx.get(table.busy):
                        await ctx.tick()
                        spent += 1
                    spent += await _pulse(ctx, table, [table.alloc])
                    cycles.append(spent)
                await ctx.tick()        # as the engine's command decode does (SlotTable.commit)
            one = torch.zeros(1, size, 1)
            for i in range(config.layers):
                cache.append(i, one, one)
            cache.compact()
            ids = [cache.ids(i) for i in range(config.layers)]
            assert ctx.get(ix.length) == len(ids[0]), f"token {token}: length"
            _check_lists(ctx, config, table, owner, ids, f"token {token}")

    sim = Simulator(pair)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return cycles
