"""A seeded tiny decoder-only transformer that attends over a :class:`golden.kv_cache.KVCache`.

It exists to run the cache policies end to end without downloading a model: Llama-shaped
(RMSNorm, RoPE with the rotate-half convention, grouped-query attention, SiLU-gated MLP), with
random weights drawn from a ``torch.Generator`` seed, in float64 by default so that cached
decoding and full attention agree to rounding.

Attention over the cache follows DESIGN.md 7.4: keys are cached before RoPE and rotated at read
time with their logical index; a query is rotated with the cache length before its append.
With a budget the stream never exceeds, that is full causal attention.
"""

import dataclasses
import math

import torch
import torch.nn.functional as F

from .kv_cache import KVCache


__all__ = ["TinyShape", "TinyDecoder", "rope"]


@dataclasses.dataclass(frozen=True)
class TinyShape:
    """Sizes and seed of a :class:`TinyDecoder`."""
    vocab: int = 64
    d_model: int = 32
    layers: int = 4
    n_heads: int = 2
    kv_heads: int = 1
    head_dim: int = 16
    ffn: int = 64
    rope_base: float = 10000.0
    seed: int = 0


def rope(x, positions, base):
    """Rotate ``x`` (``..., T, D``, ``D`` even) by ``positions`` (``T``), rotate-half style."""
    half = x.shape[-1] // 2
    inv_freq = base ** (-torch.arange(half, dtype=torch.float64) / half)
    angle = positions.to(torch.float64)[:, None] * inv_freq[None, :]
    cos = torch.cat([angle.cos(), angle.cos()], dim=-1).to(x.dtype)
    sin = torch.cat([angle.sin(), angle.sin()], dim=-1).to(x.dtype)
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class TinyDecoder:
    """Random-weight decoder; see the module docstring.

    Parameters
    ----------
    shape : TinyShape
    dtype : torch.dtype
    """

    def __init__(self, shape=TinyShape(), *, dtype=torch.float64):
        if shape.n_heads % shape.kv_heads or shape.head_dim % 2:
            raise ValueError(f"TinyDecoder: n_heads={shape.n_heads} must be a multiple of "
                             f"kv_heads={shape.kv_heads} and head_dim={shape.head_dim} even")
        self.shape = shape
        self.dtype = dtype
        gen = torch.Generator().manual_seed(shape.seed)

        def weight(rows, cols):
            return torch.randn(rows, cols, generator=gen, dtype=torch.float64).to(dtype) / math.sqrt(rows)

        def norm():
            return (1 + 0.1 * torch.randn(shape.d_model, generator=gen, dtype=torch.float64)).to(dtype)

        d, hd = shape.d_model, shape.head_dim
        self.embed = torch.randn(shape.vocab, d, generator=gen, dtype=torch.float64).to(dtype)
        self.blocks = [dict(attn_norm=norm(), wq=weight(d, shape.n_heads * hd),
                            wk=weight(d, shape.kv_heads * hd), wv=weight(d, shape.kv_heads * hd),
                            wo=weight(shape.n_heads * hd, d), mlp_norm=norm(),
                            w_gate=weight(d, shape.ffn), w_up=weight(d, shape.ffn),
                            w_down=weight(shape.ffn, d))
                       for _ in range(shape.layers)]
        self.final_norm = norm()
        self.head = weight(d, shape.vocab)

    def new_cache(self, policy=None):
        """An empty :class:`KVCache` of this model's geometry under ``policy``."""
        s = self.shape
        return KVCache(s.layers, s.kv_heads, s.head_dim, policy, dtype=self.dtype)

    @staticmethod
    def _rms(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * w

    def _heads(self, x, w, heads):
        return (x @ w).view(x.shape[0], heads, self.shape.head_dim).transpose(0, 1)

    def _qkv(self, block, x):
        h = self._rms(x, block["attn_norm"])
        s = self.shape
        return (self._heads(h, block["wq"], s.n_heads), self._heads(h, block["wk"], s.kv_heads),
                self._heads(h, block["wv"], s.kv_heads))

    def _finish(self, block, x, attn):
        x = x + attn.transpose(0, 1).reshape(x.shape[0], -1) @ block["wo"]
        h = self._rms(x, block["mlp_norm"])
        return x + (F.silu(h @ block["w_gate"]) * (h @ block["w_up"])) @ block["w_down"]

    def _logits(self, x):
        return self._rms(x, self.final_norm) @ self.head

    def forward(self, tokens, cache):
        """Run a block of tokens through the model over ``cache``, then compact the cache.

        Returns the logits, ``(T, vocab)``.
        """
        s = self.shape
        x = self.embed[torch.as_tensor(tokens)]
        group = s.n_heads // s.kv_heads
        for i, block in enumerate(self.blocks):
            q, k, v = self._qkv(block, x)
            q_pos = cache.append(i, k, v)
            keys, values, k_pos = cache.read(i)
            q = rope(q, q_pos, s.rope_base)
            keys = rope(keys, k_pos, s.rope_base).repeat_interleave(group, dim=0)
            values = values.repeat_interleave(group, dim=0)
            scores = q @ keys.transpose(1, 2) / math.sqrt(s.head_dim)
            scores = scores.masked_fill(k_pos[None, None, :] > q_pos[None, :, None], -math.inf)
            x = self._finish(block, x, torch.softmax(scores, dim=-1) @ values)
        cache.compact()
        return self._logits(x)

    def full_attention(self, tokens):
        """Logits of a whole sequence with plain causal attention and no cache, ``(T, vocab)``."""
        s = self.shape
        x = self.embed[torch.as_tensor(tokens)]
        pos = torch.arange(x.shape[0])
        for block in self.blocks:
            q, k, v = self._qkv(block, x)
            k = rope(k, pos, s.rope_base)
            attn = F.scaled_dot_product_attention(rope(q, pos, s.rope_base), k, v, is_causal=True,
                                                  enable_gqa=True)
            x = self._finish(block, x, attn)
        return self._logits(x)

    def teacher_forced(self, tokens, cache, *, prefill=1):
        """Feed ``tokens[:prefill]`` as one block, then the rest one at a time.

        Returns the logits at every position, ``(len(tokens), vocab)``.
        """
        tokens = list(tokens)
        out = [self.forward(tokens[:prefill], cache)]
        out += [self.forward(tokens[t:t + 1], cache) for t in range(prefill, len(tokens))]
        return torch.cat(out)

    def greedy(self, prompt, steps, cache):
        """Prefill ``prompt`` and decode ``steps`` tokens greedily; returns the new tokens."""
        logits = self.forward(list(prompt), cache)
        out = []
        for _ in range(steps):
            out.append(int(logits[-1].argmax()))
            logits = self.forward([out[-1]], cache)
        return out
