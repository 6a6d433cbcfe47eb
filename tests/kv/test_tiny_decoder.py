"""The tiny decoder over the golden cache: equal to full attention while the budget holds."""

import pytest
import torch

from golden.lacache import LaCache, StreamingLLM
from golden.tiny_decoder import TinyDecoder, TinyShape
from hw.kv.config import KVConfig


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny matmuls: thread hand-off costs ~40x the arithmetic on a busy 2-core machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def stream(length, seed=1, vocab=64):
    return torch.randint(0, vocab, (length,), generator=torch.Generator().manual_seed(seed)).tolist()


@pytest.mark.parametrize("kv_heads, prefill", [(1, 1), (2, 7)])
def test_cached_decoding_equals_full_attention(kv_heads, prefill):
    model = TinyDecoder(TinyShape(kv_heads=kv_heads, seed=kv_heads))
    tokens = stream(48)
    config = KVConfig(layers=4, kv_heads=kv_heads, head_dim=16, budget=64, sinks=4, span=2)
    cached = model.teacher_forced(tokens, model.new_cache(LaCache.from_config(config)),
                                  prefill=prefill)
    torch.testing.assert_close(cached, model.full_attention(tokens), rtol=0, atol=1e-12)


def test_greedy_tokens_equal_full_attention():
    model = TinyDecoder()
    prompt, steps = stream(5, seed=2), 40
    cached = model.greedy(prompt, steps, model.new_cache(StreamingLLM(4, 128, 4)))
    seq = list(prompt)
    for _ in range(steps):
        seq.append(int(model.full_attention(seq)[-1].argmax()))
    assert cached == seq[len(prompt):]


def test_compensation_keeps_full_attention_one_step_longer():
    """L=6, S=2, O=0: R=2, so LaCache with C=16 holds up to C' = 17 entries.

    Token t attends over t + 1 entries before the compaction that follows it, so positions
    0..C' (N = 18 at t = 17: the compaction at t = 16 is the no-op need = 0) are full
    attention; t = 18 sees a compacted cache. StreamingLLM with C=16 departs at t = 17.
    """
    model = TinyDecoder(TinyShape(layers=6, seed=5))
    tokens = stream(24, seed=3)
    full = model.full_attention(tokens)
    lacache = model.teacher_forced(tokens, model.new_cache(LaCache(6, 16, 2, 2, 0)))
    streaming = model.teacher_forced(tokens, model.new_cache(StreamingLLM(6, 16, 2)))
    torch.testing.assert_close(lacache[:18], full[:18], rtol=0, atol=1e-12)
    assert (lacache[18] - full[18]).abs().max() > 1e-6
    torch.testing.assert_close(streaming[:17], full[:17], rtol=0, atol=1e-12)
    assert (streaming[17] - full[17]).abs().max() > 1e-6


def test_long_compacted_decode_stays_bounded_and_seeded():
    model = TinyDecoder()
    cache = model.new_cache(LaCache(4, 12, 2, 2, 0))
    a = model.greedy([1, 2, 3], 60, cache)
    assert a == TinyDecoder().greedy([1, 2, 3], 60, model.new_cache(LaCache(4, 12, 2, 2, 0)))
    assert all(cache.length(i) <= 12 for i in range(4))
    assert all(cache.ids(i)[-1] == 62 and cache.ids(i)[:2] == [0, 1] for i in range(4))


def test_shape_is_checked():
    with pytest.raises(ValueError, match="n_heads=3 must be a multiple of kv_heads=2"):
        TinyDecoder(TinyShape(n_heads=3, kv_heads=2))
