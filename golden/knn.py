"""Exact mean distance to the k nearest neighbours of a point cloud, without a KD-tree.

scipy is not a dependency, and a brute-force ``cdist`` of 140k points is 2e10 distances. Instead:

1. Sort the points along a Morton (Z-order) curve; the k-th nearest among a point's ``WINDOW``
   neighbours on each side of the curve is an upper bound ``r`` of its true k-th neighbour
   distance (exact distances to a subset of the points).
2. Group the points by the power of two ``h >= r``. For a group, hash every point into a grid of
   cell side ``h``: all points within ``r <= h`` of a query lie in the 3x3x3 cells around its own,
   so the distances to those cells' points give the exact k nearest.

Most points get a tight bound from step 1, so step 2 looks at a few dozen candidates per point.
"""

import math

import torch


__all__ = ["mean_knn_distance"]


_MORTON_BITS = 21
#: Morton neighbours on each side that give the upper bound of step 1.
WINDOW = 8
_OFFSETS = torch.cartesian_prod(*[torch.arange(-1, 2)] * 3)
#: Shift and mask steps spreading 21 bits to every third bit of 63.
_SPREAD = ((32, 0x1F00000000FFFF), (16, 0x1F0000FF0000FF), (8, 0x100F00F00F00F00F),
           (4, 0x10C30C30C30C30C3), (2, 0x1249249249249249))


def _morton_order(points):
    """Permutation sorting ``points`` (N, 3) along a 63-bit Z-order curve."""
    lo, hi = points.amin(0), points.amax(0)
    cells = (1 << _MORTON_BITS) - 1
    q = ((points - lo) / (hi - lo).clamp(min=1e-30) * cells).to(torch.int64)
    for shift, mask in _SPREAD:
        q = (q | (q << shift)) & mask
    return torch.argsort(q[:, 0] | (q[:, 1] << 1) | (q[:, 2] << 2))


def _window_bound(pts, k):
    """k-th neighbour distance of each point among its Morton neighbours (``pts`` sorted)."""
    n = len(pts)
    shifts = [s for s in range(-WINDOW, WINDOW + 1) if s and abs(s) < n]
    idx = (torch.arange(n)[:, None] + torch.tensor(shifts)).clamp(0, n - 1)
    # Clamping at the ends repeats a neighbour; an inf keeps repeats from counting twice.
    repeated = torch.cat([torch.zeros(n, 1, dtype=torch.bool), idx[:, 1:] == idx[:, :-1]], 1)
    dist = (pts[idx] - pts[:, None]).norm(dim=-1).masked_fill(repeated | (idx == torch.arange(
        n)[:, None]), math.inf)
    return dist.topk(k, largest=False).values[:, -1]


def _grid_knn(pts, queries, h, k, budget):
    """Mean distance to the k nearest of ``pts`` for ``queries`` whose k-th neighbour is <= h."""
    cell = torch.floor((pts - pts.amin(0)) / h).to(torch.int64) + 1
    span = int(cell.max()) + 2
    key = (cell[:, 0] * span + cell[:, 1]) * span + cell[:, 2]
    order = torch.argsort(key)
    keys, counts = torch.unique_consecutive(key[order], return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    near = key[queries, None] + _OFFSETS @ torch.tensor([span * span, span, 1])
    slot = torch.searchsorted(keys, near).clamp(max=len(keys) - 1)
    count = torch.where(keys[slot] == near, counts[slot], 0)
    # Queries with similar candidate counts share a step, so little of the padding is wasted.
    total = count.sum(1)
    by_size = torch.argsort(total)
    out = torch.empty(len(queries), dtype=torch.float64)
    first = 0
    while first < len(queries):
        last = int(torch.searchsorted(torch.cumsum(total[by_size[first:]], 0), budget)) + 1
        part = by_size[first:first + last]
        first += last
        flat = count[part].flatten()
        owner = torch.repeat_interleave(torch.arange(len(flat)), flat)
        local = torch.arange(len(owner)) - (torch.cumsum(flat, 0) - flat)[owner]
        cand = order[starts[slot[part].flatten()[owner]] + local]
        row = owner // len(_OFFSETS)
        col = torch.arange(len(row)) - (torch.cumsum(total[part], 0) - total[part])[row]
        q = queries[part]
        dist = torch.full((len(part), int(total[part].max())), math.inf, dtype=torch.float64)
        dist[row, col] = (pts[cand] - pts[q[row]]).norm(dim=-1)
        # The smallest of the k + 1 is the query itself (0, or a duplicate's 0).
        out[part] = dist.topk(k + 1, largest=False).values[:, 1:].mean(1)
    return out


def mean_knn_distance(points, k=3, budget=1 << 21):
    """Mean Euclidean distance from each point to its ``k`` nearest other points.

    Parameters
    ----------
    points : torch.Tensor, (N, 3)
        Any float dtype; distances are computed in fp64. Needs ``N > k``.
    k : int
    budget : int
        Candidate distances per step (bounds memory).

    Returns
    -------
    torch.Tensor
        fp64 (N,). Exact up to fp64 rounding of the distances (duplicates give 0).
    """
    n = len(points)
    if n <= k:
        raise ValueError(f"mean_knn_distance: need more than k={k} points, got {n}")
    pts = points.to(torch.float64)
    order = _morton_order(pts)
    bound = torch.empty(n, dtype=torch.float64)
    bound[order] = _window_bound(pts[order], min(k, n - 1))
    # Slack covers the rounding of the distance computations; 2**-40 keeps log2 finite.
    level = torch.ceil(torch.log2(bound * (1 + 1e-9) + 2.0 ** -40)).to(torch.int64)
    out = torch.empty(n, dtype=torch.float64)
    for e in torch.unique(level).tolist():
        queries = torch.nonzero(level == e)[:, 0]
        out[queries] = _grid_knn(pts, queries, 2.0 ** e, k, budget)
    return out
