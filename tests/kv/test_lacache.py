"""LaCache and StreamingLLM policies, on cases worked out by hand (DESIGN.md 7.4)."""

import pytest

from golden.lacache import LaCache, StreamingLLM, ladder_shape, make_policy
from hw.kv.config import KVConfig


def compose(ids, keep):
    """Original ids after a step: ``ids`` per layer, ``keep`` the policy's answer."""
    return ids if keep is None else [[row[j] for j in k] for row, k in zip(ids, keep)]


def test_small_ladder_by_hand():
    """L=6, S=2, O=0, S0=2, C=10, one token per step.

    B = 1 + ceil((6 - 2) / 2) = 3, A = min(ceil(2 / 2), 3) = 1, R = 2: a ladder group holds 3
    consecutive entries, each layer keeps the one at offset ``i % 3`` and drops 2.
    """
    policy = LaCache(layers=6, budget=10, sinks=2, span=2, overlap=0)
    assert (policy.B, policy.A, policy.R) == (3, 1, 2)
    ids = [[] for _ in range(6)]
    for token in range(10):
        ids = [row + [token] for row in ids]
        assert policy.step(len(ids[0])) is None             # N <= 10 keeps all
    # First compaction, token 10, N = 11 > 10. Compensation: C = 10 + R // 2 = 11, for good.
    # need = 11 - 11 = 0; room = C - cursor - L = 11 - 2 - 6 = 3; free0 = (3 // 1) * 2 = 6;
    # no start-over (0 <= 6); inc = ceil(0 / 2) * 1 = 0, n = 0: every layer keeps [0, 11),
    # cursor stays 2. The compensation made this compaction a no-op.
    plan = policy.plan(11)
    assert (plan.C, plan.need, plan.room, plan.free0, plan.startover, plan.inc, plan.n,
            plan.next_cursor) == (11, 0, 3, 6, False, 0, 0, 2)
    ids = [row + [10] for row in ids]
    assert policy.step(11) == [list(range(11))] * 6
    assert (policy.C, policy.cursor, policy.compensated) == (11, 2, True)
    # Second compaction, token 11, N = 12: need = 1; room = 11 - 2 - 6 = 3; free0 = 6;
    # inc = ceil(1 / 2) * 1 = 1, n = 1. Layer i keeps [0, 2) + [2 + i % 3] + [2 + 3, 12):
    # of the group {2, 3, 4}, layers 0 and 3 keep 2, layers 1 and 4 keep 3, layers 2 and 5
    # keep 4. 10 entries = C + 1 - R remain; cursor = 2 + 1 = 3.
    plan = policy.plan(12)
    assert (plan.need, plan.room, plan.free0, plan.inc, plan.n, plan.next_cursor) == (1, 3, 6, 1, 1, 3)
    ids = [row + [11] for row in ids]
    keep = policy.step(12)
    assert keep == [[0, 1, 2 + i % 3] + list(range(5, 12)) for i in range(6)]
    ids = compose(ids, keep)
    assert ids[0] == [0, 1, 2, 5, 6, 7, 8, 9, 10, 11]
    assert policy.cursor == 3
    # Token 12: N = 11 <= C, kept whole. Token 13, N = 12: need = 1; room = 11 - 3 - 6 = 2;
    # free0 = 4; inc = 1; layer i keeps [0, 3) + [3 + i % 3] + [6, 12); cursor = 4. In original
    # ids, each class now keeps one of {5, 6, 7} as it kept one of {2, 3, 4}: the ladder.
    ids = [row + [12] for row in ids]
    assert policy.step(11) is None
    ids = [row + [13] for row in ids]
    keep = policy.step(12)
    assert keep == [[0, 1, 2, 3 + i % 3] + list(range(6, 12)) for i in range(6)]
    ids = compose(ids, keep)
    assert ids[:3] == [[0, 1, 2, 5] + list(range(8, 14)),
                       [0, 1, 3, 6] + list(range(8, 14)),
                       [0, 1, 4, 7] + list(range(8, 14))]
    assert ids[3:] == ids[:3]
    # One more compaction moves the cursor to 5; then room = 11 - 5 - 6 = 0, free0 = 0 < need:
    # a start-over. inc = room = 0 keeps everything in the first stage; F1 = ((11 - 2 - 6) // 1)
    # * 2 = 6, rem = 1, T = 1, B2 = 3, R2 = 2, inc2 = 1: the ladder restarts at the sinks,
    # keeping [0, 2) + [2 + i % 3] + [5, 12), and cursor = 2 + 1 = 3.
    assert policy.step(11) is None and policy.step(12) is not None
    assert policy.cursor == 5
    policy.step(11)
    plan = policy.plan(12)
    assert (plan.room, plan.free0, plan.startover, plan.F1, plan.rem, plan.T, plan.B2,
            plan.inc2, plan.next_cursor) == (0, 0, True, 6, 1, 1, 3, 1, 3)
    assert policy.step(12) == [[0, 1, 2 + i % 3] + list(range(5, 12)) for i in range(6)]


def test_paper_config_first_compactions():
    """32 layers, S/O 8/4, C=256, S0=4: B=7, A=2, R=5, so C becomes 256 + 2 = 258."""
    policy = LaCache(32, 256, 4, 8, 4)
    # N = 257: need = 257 - 258 = -1, inc = ceil(-1 / 5) * 2 = 0: kept whole (lists, not None).
    assert policy.step(257) == [list(range(257))] * 32
    assert policy.step(258) is None
    # N = 259: need = 1; room = 258 - 4 - 32 = 222; free0 = 111 * 5; inc = 2, n = 1.
    # Layer i keeps [0, 4) + [4 + i % 6, 5 + i % 6] + [4 + 7, 259): 254 = 258 + 1 - 5 entries.
    keep = policy.step(259)
    for i, k in enumerate(keep):
        assert k == [0, 1, 2, 3, 4 + i % 6, 5 + i % 6] + list(range(11, 259))
    assert policy.cursor == 6


def test_prefill_exact_duplicates_and_clean_by_hand():
    """One-shot prefill N=10 with L=4, S=2, O=1, S0=1, C=7: B=3, A=2, R=1 (C stays 7).

    need = 3; room = 7 - 1 - 4 = 2; free0 = (2 // 2) * 1 = 1 < 3: start-over, inc = 2, n = 1.
    First stage, class c = i % 2: [0] + [1 + c, 2 + c] + [4, 10), 9 entries.
    F1 = ((7 - 1 - 4) // 2) * 1 = 1, rem = 2, T = 2, B2 = 3 + 1 * 2 = 5, R2 = 3, inc2 = 2, n2 = 1.
    Second stage, class c2 = i % 4: [0] + [1 + c2, 1 + c2 + 2] + [6, 9). For layer 3 (c = 1,
    c2 = 3) that selects positions [0, 4, 6, 6, 7, 8] of [0, 2, 3, 4, 5, 6, 7, 8, 9]: token 7
    twice, because the stride T = 2 carries offset 6 past the group [1, 6) into the tail.
    """
    policy = LaCache(4, 7, 1, 2, 1)
    plan = policy.plan(10)
    assert (plan.need, plan.room, plan.free0, plan.startover, plan.n, plan.F1, plan.rem, plan.T,
            plan.B2, plan.R2, plan.inc2, plan.n2) == (3, 2, 1, True, 1, 1, 2, 2, 5, 3, 2, 1)
    assert policy.step(10) == [[0, 1, 4, 7, 8, 9], [0, 3, 5, 7, 8, 9], [0, 4, 6, 7, 8, 9],
                               [0, 5, 7, 7, 8, 9]]
    assert policy.cursor == 3
    # Clean: pass 1 caps need at free0 + F1 = 2: rem = 1, T = 1, B2 = 3, R2 = 1; second stage
    # [0] + [1 + c, 2 + c] + [4, 9) leaves 8 entries (class 0: tokens 0 1 2 5 6 7 8 9), cursor 3.
    # Pass 2, N = 8: need = 1, room = 7 - 3 - 4 = 0, start-over with T = 1 again: [0] + [1 + c,
    # 2 + c] + [4, 8) leaves 7 = C entries, cursor 3.
    clean = LaCache(4, 7, 1, 2, 1, exact=False)
    assert clean.step(10) == [[0, 1, 2, 6, 7, 8, 9], [0, 4, 5, 6, 7, 8, 9]] * 2
    assert [(p.N, p.need, p.T, p.next_cursor) for p in clean.passes] == [(10, 2, 1, 3), (8, 1, 1, 3)]


def test_prefill_exact_unsorted():
    """L=6, S=3, O=1, S0=1, C=9, N=13: B=3, A=2, R=1; start-over with T=3, B2=7, R2=5.

    Layer 5: first stage (c = 1) keeps [0, 2, 3, 4, ..., 12]; the second (c2 = 5) selects
    [0] + [1 + 5, 1 + 5 + 3] + [8, 12) = [0, 6, 9, 8, 9, 10, 11]: tokens 10 then 9, and 10 twice.
    """
    exact = LaCache(6, 9, 1, 3, 1)
    assert exact.plan(13).T == 3
    assert exact.step(13)[5] == [0, 7, 10, 9, 10, 11, 12]
    clean = LaCache(6, 9, 1, 3, 1, exact=False)
    for k in clean.step(13):
        assert k == sorted(set(k)) and len(k) <= clean.C and k[-1] == 12


def test_prefill_exact_index_error():
    """Rounding n2 up lets the released start-over select past the list: torch raises there."""
    exact = LaCache(13, 25, 5, 6, 4)
    with pytest.raises(IndexError, match="as the released code would"):
        exact.step(113)
    assert (exact.C, exact.cursor) == (26, 5)       # compensated, cursor not advanced
    keep = LaCache(13, 25, 5, 6, 4, exact=False).step(113)
    assert all(k == sorted(set(k)) and k[-1] == 112 and k[:5] == list(range(5)) for k in keep)


def test_modes_agree_when_t_is_one():
    for n in range(300, 2000, 7):
        a, b = LaCache(32, 256, 4, 8, 4), LaCache(32, 256, 4, 8, 4, exact=False)
        if a.plan(n).T <= 1:
            assert a.step(n) == b.step(n) and (a.cursor, a.C) == (b.cursor, b.C)


def test_streaming_llm_by_hand():
    policy = StreamingLLM(layers=3, budget=6, sinks=2)
    assert policy.step(6) is None
    assert policy.step(7) == [[0, 1, 3, 4, 5, 6]] * 3
    assert policy.step(20) == [[0, 1, 16, 17, 18, 19]] * 3
    ids = list(range(6))
    for token in range(6, 50):
        ids.append(token)
        ids = [ids[j] for j in policy.step(len(ids))[0]]
        assert ids == [0, 1] + list(range(token - 3, token + 1))


def test_make_policy_follows_the_config():
    config = KVConfig(layers=24, span=9, overlap=7)
    lacache = make_policy(config, exact=False)
    assert isinstance(lacache, LaCache) and not lacache.exact
    assert (lacache.B, lacache.A, lacache.R) == (config.B, config.A, config.R)
    streaming = make_policy(config.replace(policy="streaming"))
    assert isinstance(streaming, StreamingLLM) and streaming.budget == 256
    assert ladder_shape(24, 9, 7) == (9, 5, 4)
