"""The per-layer KV-cache model: gathering, read-out order, ids and RoPE positions."""

import pytest
import torch

from golden.kv_cache import KVCache
from golden.lacache import LaCache, StreamingLLM
from golden.tiny_decoder import rope


HEADS, DIM = 2, 4


def rows(layer, tokens, *, value=False):
    """K (or V) rows that spell out where they came from: layer, token, head, element."""
    t = torch.as_tensor(tokens, dtype=torch.float64)[None, :, None]
    h = torch.arange(HEADS, dtype=torch.float64)[:, None, None]
    d = torch.arange(DIM, dtype=torch.float64)[None, None, :]
    return t * 1000 + layer * 100 + h * 10 + d + (0.5 if value else 0.0)


def feed(cache, tokens):
    """Append one block to every layer and compact; returns what compact returns."""
    return cache.extend([rows(i, tokens) for i in range(cache.layers)],
                        [rows(i, tokens, value=True) for i in range(cache.layers)])


def test_read_out_follows_the_ids_and_positions_are_logical():
    layers = 6
    cache = KVCache(layers, HEADS, DIM, LaCache(layers, 10, 2, 2, 0))
    mirror = LaCache(layers, 10, 2, 2, 0)
    feed(cache, list(range(5)))                     # a prefill block
    expected = [list(range(5)) for _ in range(layers)]
    assert mirror.step(5) is None
    for token in range(5, 60):
        before = cache.length(0)
        q_pos = cache.append(0, rows(0, [token]), rows(0, [token], value=True))
        assert q_pos.tolist() == [before]           # the query's position: length before append
        for i in range(1, layers):
            cache.append(i, rows(i, [token]), rows(i, [token], value=True))
        reported = cache.compact()
        expected = [row + [token] for row in expected]
        keep = mirror.step(len(expected[0]))
        if keep is not None:
            expected = [[row[j] for j in k] for row, k in zip(expected, keep)]
        assert reported in (None, expected)
        for i in range(layers):
            k, v, pos = cache.read(i)
            assert cache.ids(i) == expected[i]
            assert torch.equal(k, rows(i, expected[i]))             # unrotated, gathered rows
            assert torch.equal(v, rows(i, expected[i], value=True))
            assert pos.tolist() == list(range(len(expected[i])))   # key j at position j


def test_compact_reports_original_ids():
    cache = KVCache(3, HEADS, DIM, StreamingLLM(3, 6, 2))
    assert feed(cache, [0, 1, 2, 3, 4, 5]) is None
    assert feed(cache, [6, 7]) == [[0, 1, 4, 5, 6, 7]] * 3
    assert feed(cache, [8]) == [[0, 1, 5, 6, 7, 8]] * 3
    assert cache.append(1, rows(1, [9]), rows(1, [9], value=True)).tolist() == [6]


def test_without_policy_everything_stays():
    cache = KVCache(2, HEADS, DIM)
    for token in range(40):
        assert feed(cache, [token]) is None
    assert cache.ids(1) == list(range(40))


def test_misuse_is_refused():
    cache = KVCache(2, HEADS, DIM)
    with pytest.raises(ValueError, match="append one block to every layer"):
        cache.compact()
    cache.append(0, rows(0, [0]), rows(0, [0], value=True))
    with pytest.raises(ValueError, match="already holds token 0"):
        cache.append(0, rows(0, [0]), rows(0, [0], value=True))
    with pytest.raises(ValueError, match="layers differ"):
        cache.compact()
    with pytest.raises(ValueError, match="K .* and V .* differ"):
        cache.append(1, rows(1, [0]), rows(1, [0, 1]))


def test_rope_depends_only_on_position_differences():
    """Why logical positions are enough: scores see q_pos - k_pos, never absolute positions."""
    gen = torch.Generator().manual_seed(3)
    q = torch.randn(1, 16, generator=gen, dtype=torch.float64)
    k = torch.randn(1, 16, generator=gen, dtype=torch.float64)
    base = (rope(q, torch.tensor([9]), 10000.0) @ rope(k, torch.tensor([4]), 10000.0).T).item()
    shifted = (rope(q, torch.tensor([509]), 10000.0) @ rope(k, torch.tensor([504]), 10000.0).T).item()
    assert shifted == pytest.approx(base, abs=1e-12)
    assert torch.equal(rope(q, torch.tensor([0]), 10000.0), q)
