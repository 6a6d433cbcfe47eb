"""Eviction policies of the KV cache as index lists: LaCache (as released) and StreamingLLM.

A policy is called after one token (or a prefill block) has been appended to every layer, with
the cache length ``N``. It answers ``None`` when the cache is kept whole, else one list per
layer of the indices (into that layer's current cache) to keep, in order. The policy never
sees K or V: it only needs lengths, so it is what a hardware indexer is checked against.

LaCache follows DESIGN.md 7.4 and GATECH-EIC/LaCache ``kv_cache.py`` line for line, with
``math.ceil`` on float quotients and integer ``//``, quirks included. The budget is raised by
``R // 2`` on the first compaction and stays raised, so the first call compares ``N`` with the
raw budget and every later one with the raised one; in token-by-token decoding the first
compaction is then a no-op whenever ``R >= 2``. When the ladder region is full, a "start-over" re-ladders the
already compacted cache from the sinks on.

A call that must free more than one start-over can (``T >= 2``, which only a long prefill
reaches; streaming decode always has ``T <= 1``) re-ladders with groups of
``B2 = B + (T - 1) * (B - 1)`` and a stride ``T`` between the ``A`` entries a layer keeps. Two things go wrong there: for ``A >= 2`` the stride reaches past its group (the
largest offset is ``B2 - 1 + (T - 1) * (A - 1)``), so entries are kept twice and out of order
(double weight in softmax; a later token gets a smaller RoPE position); and rounding ``n2`` up
can make the groups reach past the compacted list, where the released code's tensor indexing
raises ``IndexError`` (as exact mode does).

With ``exact=False`` (clean mode) exactly one thing changes: a call whose start-over would need
``T >= 2`` is split into passes. Each pass is the released computation with ``need`` capped at
``free0 + F1`` (what one start-over frees, so ``T = 1``) and the state advanced as released;
passes repeat on the shorter list until it fits the budget, and each layer's lists are composed.
Every pass keeps strictly increasing indices, the sinks and the last ``L - R + 1`` entries, so
the result is sorted, duplicate-free and in range, every layer keeps the same number of
entries, and layers with equal ``i % (R + 1)`` keep the same list (``R2 = R`` in every pass;
exact mode's ``T >= 2`` ladder has ``R2 + 1`` classes instead). A call with ``T <= 1`` -- in particular every streaming-decode call -- is one pass,
identical to exact mode.
"""

import dataclasses
import math


__all__ = ["ladder_shape", "Compaction", "LaCache", "StreamingLLM", "make_policy"]


def ladder_shape(layers, span, overlap):
    """``(B, A, R)`` of the released code: group size, kept and dropped entries per group."""
    B = 1 + math.ceil((layers - span) / (span - overlap))
    A = min(math.ceil(span / (span - overlap)), B)
    return B, A, B - A


@dataclasses.dataclass(frozen=True)
class Compaction:
    """The scalar decisions of one LaCache pass; names as in DESIGN.md 7.4.

    ``need`` is the capped one in a clean-mode split pass. The start-over fields ``F1``,
    ``rem``, ``T``, ``B2``, ``R2``, ``inc2`` and ``n2`` are 0 when ``startover`` is false.
    """
    N: int
    C: int
    cursor: int
    need: int
    room: int
    free0: int
    startover: bool
    inc: int
    n: int
    F1: int
    rem: int
    T: int
    B2: int
    R2: int
    inc2: int
    n2: int
    next_cursor: int


def _ladder(base, cls, group, count, stride, A):
    return [base + cls + group * j + stride * k for j in range(count) for k in range(A)]


class LaCache:
    """LaCache ladder compaction; state: budget ``C``, ``cursor``, ``compensated``.

    Parameters
    ----------
    layers, budget, sinks, span, overlap : int
        L, C, S0, S and O of DESIGN.md 7.4; the caller guarantees they are valid
        (:class:`hw.kv.config.KVConfig` checks them).
    exact : bool
        Reproduce the released code after a start-over with ``T >= 2``: duplicate and unsorted
        indices, or ``IndexError``. Clean mode splits such a call (see the module docstring).

    Attributes
    ----------
    passes : list of Compaction
        The passes of the last :meth:`step` (at most one in exact mode).
    """

    def __init__(self, layers, budget, sinks, span, overlap, *, exact=True):
        self.layers = layers
        self.sinks = sinks
        self.B, self.A, self.R = ladder_shape(layers, span, overlap)
        self.exact = exact
        self.C = budget
        self.cursor = sinks
        self.compensated = False
        self.passes = []

    @classmethod
    def from_config(cls, config, *, exact=True):
        """Build from a :class:`hw.kv.config.KVConfig`."""
        return cls(config.layers, config.budget, config.sinks, config.span, config.overlap,
                   exact=exact)

    def plan(self, N, *, split=False):
        """The :class:`Compaction` of a call at length ``N``, or ``None`` when the cache is
        kept whole; changes no state. ``split`` caps ``need`` as a clean-mode pass does."""
        if N <= self.C:
            return None
        B, A, R, L, S0 = self.B, self.A, self.R, self.layers, self.sinks
        C = self.C if self.compensated else self.C + R // 2
        need = N - C
        room = C - self.cursor - L
        free0 = (room // A) * R
        startover = need > free0
        inc = room if startover else math.ceil(need / R) * A
        F1 = rem = T = B2 = R2 = inc2 = n2 = 0
        if startover:
            F1 = ((C - S0 - L) // A) * R
            if split:
                need = min(need, free0 + F1)
            rem = need - free0
            T = math.ceil(rem / F1)
            B2 = B + (T - 1) * (B - 1)
            R2 = B2 - A
            inc2 = math.ceil(rem / R2) * A
            n2 = inc2 // A
        return Compaction(N=N, C=C, cursor=self.cursor, need=need, room=room, free0=free0,
                          startover=startover, inc=inc, n=inc // A, F1=F1, rem=rem, T=T,
                          B2=B2, R2=R2, inc2=inc2, n2=n2,
                          next_cursor=S0 + inc2 if startover else self.cursor + inc)

    def keep(self, plan, layer):
        """Indices layer ``layer`` keeps in the pass ``plan``, as the released code lists them.

        Raises
        ------
        IndexError
            Where the released code's tensor indexing fails.
        """
        p, A, S0 = plan, self.A, self.sinks
        kept = (list(range(p.cursor))
                + _ladder(p.cursor, layer % (self.R + 1), self.B, p.n, 1, A)
                + list(range(p.cursor + self.B * p.n, p.N)))
        if not p.startover:
            return kept
        sel = (list(range(S0))
               + _ladder(S0, layer % (p.R2 + 1), p.B2, p.n2, p.T, A)
               + list(range(S0 + p.B2 * p.n2, len(kept))))
        if max(sel) >= len(kept):
            raise IndexError(f"LaCache start-over selects index {max(sel)} of a {len(kept)}-entry "
                             f"list at N={p.N}, T={p.T}, as the released code would")
        return [kept[s] for s in sel]

    def step(self, N):
        """Compact at cache length ``N`` (after the append) and advance the state.

        Returns
        -------
        list of list of int or None
            Per layer, the indices into its current cache to keep, in order (layers of one
            ladder class share one list object); ``None`` when ``N`` is within the budget.
        """
        self.passes = []
        lists = None
        while (plan := self.plan(N, split=not self.exact)) is not None:
            self.passes.append(plan)
            # As released: an IndexError leaves the budget raised but the cursor where it was.
            self.C, self.compensated = plan.C, True
            lists = self._apply(plan, lists)
            self.cursor = plan.next_cursor
            if self.exact:
                break
            N = len(lists[0])
        return lists

    def _apply(self, plan, lists):
        # Layers alike in both ladder classes of a pass keep the same indices: build each once.
        memo = {}
        out = []
        for i in range(self.layers):
            key = (i % (self.R + 1), i % (plan.R2 + 1))
            if key not in memo:
                memo[key] = self.keep(plan, i)
            out.append(memo[key] if lists is None else [lists[i][s] for s in memo[key]])
        return out


class StreamingLLM:
    """StreamingLLM: keep the first ``sinks`` entries and the last ``budget - sinks``."""

    def __init__(self, layers, budget, sinks):
        self.layers = layers
        self.budget = budget
        self.sinks = sinks

    @classmethod
    def from_config(cls, config):
        """Build from a :class:`hw.kv.config.KVConfig`."""
        return cls(config.layers, config.budget, config.sinks)

    def step(self, N):
        """Indices to keep at cache length ``N``, the same for every layer, or ``None``."""
        if N <= self.budget:
            return None
        kept = list(range(self.sinks)) + list(range(N - (self.budget - self.sinks), N))
        return [kept] * self.layers


def make_policy(config, *, exact=True):
    """The policy a :class:`hw.kv.config.KVConfig` names (``exact`` applies to LaCache)."""
    if config.policy == "lacache":
        return LaCache.from_config(config, exact=exact)
    return StreamingLLM.from_config(config)
