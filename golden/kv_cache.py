"""Per-layer KV cache under an eviction policy, exact in torch (DESIGN.md 7.4).

Each layer stores its keys before RoPE, its values and, beside them, the original token id of
every entry (its position in the stream). A token or prefill block is appended to every layer,
then the policy compacts all layers at once, gathering the rows it keeps, as the released code
does after each forward pass. Reading a layer gives its rows in logical order and the position
each key is rotated with: its logical index in the compacted cache. A query is rotated with the
cache length before its append (plus its offset inside a block).

The per-layer original ids are what a hardware slot table is compared with: slot ``j`` of layer
``i`` must hold the token ``ids(i)[j]``.
"""

import torch


__all__ = ["KVCache"]


class KVCache:
    """Keys, values and original token ids of every layer.

    Parameters
    ----------
    layers, kv_heads, head_dim : int
        Geometry.
    policy : object or None
        ``policy.step(N)`` answers ``None`` or the per-layer indices to keep
        (see :mod:`golden.lacache`); ``None`` keeps everything (full attention).
    dtype : torch.dtype
        Storage type; rows are copied, never converted.
    """

    def __init__(self, layers, kv_heads, head_dim, policy=None, *, dtype=torch.float64):
        self.policy = policy
        self.keys = [torch.empty(kv_heads, 0, head_dim, dtype=dtype) for _ in range(layers)]
        self.values = [torch.empty(kv_heads, 0, head_dim, dtype=dtype) for _ in range(layers)]
        self.token_ids = [torch.empty(0, dtype=torch.long) for _ in range(layers)]
        self.seen = 0

    @property
    def layers(self):
        return len(self.keys)

    def length(self, layer):
        """Entries layer ``layer`` holds."""
        return self.keys[layer].shape[1]

    def append(self, layer, k, v):
        """Append a block of ``T`` tokens to one layer.

        ``k`` and ``v`` are ``(kv_heads, T, head_dim)``; ``k`` is taken before RoPE. The block's
        tokens get the ids ``seen .. seen + T - 1``; call :meth:`compact` once every layer has it.
        Returns the RoPE positions of the block's queries: the cache length before the append,
        counted up.
        """
        T = k.shape[1]
        if v.shape != k.shape:
            raise ValueError(f"KVCache.append: K {tuple(k.shape)} and V {tuple(v.shape)} differ")
        ids = torch.arange(self.seen, self.seen + T)
        if self.token_ids[layer].numel() and self.token_ids[layer][-1] >= self.seen:
            raise ValueError(f"KVCache.append: layer {layer} already holds token {self.seen}")
        start = self.length(layer)
        self.keys[layer] = torch.cat([self.keys[layer], k.to(self.keys[layer].dtype)], dim=1)
        self.values[layer] = torch.cat([self.values[layer], v.to(self.values[layer].dtype)], dim=1)
        self.token_ids[layer] = torch.cat([self.token_ids[layer], ids])
        return torch.arange(start, start + T)

    def compact(self):
        """Close the block appended to every layer and apply the policy.

        Returns
        -------
        list of list of int or None
            Per layer, the original ids it keeps, in logical order; ``None`` when the policy
            kept everything.
        """
        lengths = {self.length(i) for i in range(self.layers)}
        ends = {int(t[-1]) if t.numel() else -1 for t in self.token_ids}
        if len(lengths) != 1 or len(ends) != 1 or min(ends) < self.seen:
            raise ValueError(f"KVCache.compact: layers differ or hold no new token (lengths "
                             f"{sorted(lengths)}, last tokens {sorted(ends)}, {self.seen} seen "
                             f"before): append one block to every layer first")
        self.seen = ends.pop() + 1
        keep = None if self.policy is None else self.policy.step(lengths.pop())
        if keep is None:
            return None
        for i, idx in enumerate(keep):
            idx = torch.as_tensor(idx, dtype=torch.long)
            self.keys[i] = self.keys[i].index_select(1, idx)
            self.values[i] = self.values[i].index_select(1, idx)
            self.token_ids[i] = self.token_ids[i].index_select(0, idx)
        return [self.ids(i) for i in range(self.layers)]

    def extend(self, ks, vs):
        """Append one block per layer (``ks[i]``, ``vs[i]``) and compact; see :meth:`compact`."""
        for i, (k, v) in enumerate(zip(ks, vs, strict=True)):
            self.append(i, k, v)
        return self.compact()

    def ids(self, layer):
        """Original token ids layer ``layer`` holds, in logical order."""
        return self.token_ids[layer].tolist()

    def read(self, layer):
        """``(K, V, positions)`` of one layer in logical order; ``K`` is before RoPE and key
        ``j`` is rotated with ``positions[j] == j``."""
        return self.keys[layer], self.values[layer], torch.arange(self.length(layer))
