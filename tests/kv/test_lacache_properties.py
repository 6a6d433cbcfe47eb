"""Invariants of the LaCache policy over random valid configs and long streams.

What a hardware ladder indexer and slot table may rely on, checked at every step:
every layer keeps a sorted, duplicate-free, in-range list; all layers keep the same number of
entries, at most the compensated budget C' = C + R // 2, and exactly C' + 1 - R right after a
streaming compaction that dropped anything; the sinks and the last L - R + 1 tokens are always
kept; layers with equal ``i % (R + 1)`` keep identical lists.
"""

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from golden.lacache import LaCache, ladder_shape
from hw.kv.config import KVConfig


@st.composite
def lacache_configs(draw, max_layers=24):
    layers = draw(st.integers(2, max_layers))
    span = draw(st.integers(1, layers - 1))
    overlap = draw(st.integers(0, span - 1))
    assume(ladder_shape(layers, span, overlap)[2] >= 1)
    config = KVConfig(layers=layers, span=span, overlap=overlap, sinks=draw(st.integers(0, 6)),
                      budget=1 << 20)
    return config.replace(budget=config.min_budget + draw(st.integers(0, 40)))


def check_step(policy, config, ids, token):
    """Apply one step to the per-class original ids ``ids`` after ``token`` was appended."""
    n = len(ids[0])
    keep = policy.step(n)
    if keep is None:
        assert n <= policy.C
        return ids
    R = config.R
    for i, k in enumerate(keep):
        assert k == keep[i % (R + 1)]
    ids = [[row[j] for j in k] for row, k in zip(ids, keep)]
    for k, row in zip(keep, ids):
        assert all(0 <= a < b < n for a, b in zip(k, k[1:])) and 0 <= k[0]
        assert len(k) == len(keep[0]) <= policy.C
        assert row[:config.sinks] == list(range(min(config.sinks, token + 1)))
        recent = min(config.layers - R + 1, token + 1)
        assert row[-recent:] == list(range(token + 1 - recent, token + 1))
    if len(keep[0]) < n and n == policy.C + 1:
        assert len(keep[0]) == policy.C + 1 - R
    return ids


def run_stream(config, tokens, *, exact=True, prefill=0):
    """Feed ``prefill`` tokens at once, then one token per step, checking every step.

    Returns the per-class original ids and how many streaming steps started over.
    """
    policy = LaCache.from_config(config, exact=exact)
    classes = config.R + 1
    ids = [list(range(prefill)) for _ in range(classes)]
    if prefill:
        keep = policy.step(prefill)
        ids = ids if keep is None else [[row[j] for j in k] for row, k in zip(ids, keep)]
    startovers = 0
    for token in range(prefill, tokens):
        ids = check_step(policy, config, [row + [token] for row in ids], token)
        startovers += any(p.startover for p in policy.passes)
        assert all(p.T <= 1 for p in policy.passes)
    assert policy.C == config.capacity and config.sinks <= policy.cursor <= policy.C - config.layers
    return ids, startovers


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(config=lacache_configs(), extra=st.integers(0, 200))
def test_streaming_invariants(config, extra):
    run_stream(config, 2 * config.capacity + extra)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(config=lacache_configs(), factor=st.integers(1, 8), extra=st.integers(0, 50))
def test_clean_prefill_then_streaming(config, factor, extra):
    """A one-shot prefill of any length, in clean mode, then streaming decode: all invariants,
    the R + 1 layer classes included."""
    prefill = factor * config.budget + extra + 1
    policy = LaCache.from_config(config, exact=False)
    keep = policy.step(prefill)
    assert len({len(k) for k in keep}) == 1 and len(keep[0]) <= policy.C
    for i, k in enumerate(keep):
        assert k == keep[i % (config.R + 1)]       # every pass has T = 1, so R2 = R
        assert k == sorted(set(k)) and k[:config.sinks] == list(range(config.sinks))
        recent = config.layers - config.R + 1
        assert k[-recent:] == list(range(prefill - recent, prefill))
    run_stream(config, prefill + config.capacity, exact=False, prefill=prefill)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(config=lacache_configs(), n=st.integers(1, 2000))
def test_exact_equals_clean_unless_t_is_two_or_more(config, n):
    exact, clean = LaCache.from_config(config), LaCache.from_config(config, exact=False)
    plan = exact.plan(n)
    if plan is not None and plan.T >= 2:
        assert len(clean.step(n)[0]) <= clean.C
    else:
        assert exact.step(n) == clean.step(n)


PAPER = [(32, 16, 0), (32, 8, 4), (24, 9, 7), (28, 14, 0)]


@pytest.mark.parametrize("layers, span, overlap", PAPER)
def test_long_stream_on_paper_configs(layers, span, overlap):
    config = KVConfig(layers=layers, span=span, overlap=overlap, budget=256, sinks=4)
    ids, startovers = run_stream(config, 4096 + 512)
    assert startovers >= 4
    # Each class keeps its own rung of the ladder, so the layers together still hold far more
    # distinct tokens than the budget (428 for S/O 16/0, 882 for 8/4), while each holds <= C'.
    assert len(set().union(*map(set, ids))) > config.capacity + config.R * 64
