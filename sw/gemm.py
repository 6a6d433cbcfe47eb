"""Host side of the tensor engine: tiling of integer GEMMs into the engine's streams, and a
simulator driver that runs them (amaranth.sim) and returns tensors; quantized
``torch.nn.Linear`` / matmul on top.

The stream orders are those of :class:`hw.gemm.engine.TensorEngine`.
"""

import math
import random

import torch

from golden.gemm import quantize_activations, quantize_weights
from hw.gemm.config import N_BITS, GemmConfig, weight_range


__all__ = ["GemmJob", "engine_streams", "output_count", "run_engine", "matmul", "requant_scale",
           "linear"]

_INT8 = weight_range(8)


def _int_matrix(name, x):
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x)
    if x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool:
        raise TypeError(f"sw.gemm: {name} must be an integer tensor, not dtype {x.dtype}")
    if x.dim() != 2:
        raise ValueError(f"sw.gemm: {name} must be a matrix, got shape {tuple(x.shape)}")
    return x.to(torch.int64)


def _check_range(name, x, lo, hi, what):
    if x.numel() and (int(x.min()) < lo or int(x.max()) > hi):
        raise ValueError(f"sw.gemm: {name} values must be within {lo}..{hi} ({what}), got "
                         f"{int(x.min())}..{int(x.max())}")


def _per_channel(name, x, n):
    x = torch.as_tensor(x, dtype=torch.int64).reshape(-1)
    if x.numel() == 1:
        x = x.expand(n)
    if x.numel() != n:
        raise ValueError(f"sw.gemm: {name} must have one value per output channel ({n}), "
                         f"got {x.numel()}")
    return x


class GemmJob:
    """One ``C = requant(A @ W)`` for the engine, checked against ``config``.

    Parameters
    ----------
    a : integer tensor (M, K), int8 values
    w : integer tensor (K, N), ``config.weight_bits`` values
    multiplier, shift : integer tensor (N,) or int
        Per-channel scale; ``multiplier`` fits ``config.scale_bits`` signed, ``shift`` 0..62.
    relu : bool

    Raises
    ------
    ValueError
        On a shape mismatch, values out of range for the format, or a GEMM larger than the
        engine's buffers; the message names the operand and the allowed range.
    """

    def __init__(self, config, a, w, multiplier, shift, *, relu=False):
        if not isinstance(config, GemmConfig):
            raise TypeError(f"sw.gemm: config must be a GemmConfig, not {config!r}")
        a, w = _int_matrix("a", a), _int_matrix("w", w)
        if a.shape[1] != w.shape[0]:
            raise ValueError(f"sw.gemm: shape mismatch: a is {tuple(a.shape)}, w is "
                             f"{tuple(w.shape)}; expected (M, K) and (K, N)")
        (m, k), n = a.shape, w.shape[1]
        if min(m, k, n) == 0:
            raise ValueError(f"sw.gemm: empty GEMM (M, K, N) = ({m}, {k}, {n})")
        _check_range("a", a, *weight_range(config.act_bits), f"int{config.act_bits}")
        _check_range("w", w, *weight_range(config.weight_bits), f"int{config.weight_bits}")
        multiplier = _per_channel("multiplier", multiplier, n)
        shift = _per_channel("shift", shift, n)
        _check_range("multiplier", multiplier, *weight_range(config.scale_bits),
                     f"scale_bits={config.scale_bits}")
        _check_range("shift", shift, 0, 62, "shift")
        limits = [("K", k, config.max_k, "max_k"), ("N", n, (1 << N_BITS) - 1, "2**16-1")]
        if config.dataflow == "ws":
            limits += [("M", m, config.acc_buffer_depth, "acc_buffer_depth"),
                       ("M * ceil(K / rows)", m * math.ceil(k / config.rows),
                        config.a_buffer_depth, "a_buffer_depth")]
        else:
            limits += [("ceil(M / rows) * K", math.ceil(m / config.rows) * k,
                        config.a_buffer_depth, "a_buffer_depth"),
                       ("K", k, config.w_buffer_depth, "w_buffer_depth")]
        for what, value, limit, name in limits:
            if value > limit:
                raise ValueError(f"sw.gemm: {what} = {value} exceeds the engine's {name} = "
                                 f"{limit}")
        self.config, self.a, self.w = config, a, w
        self.multiplier, self.shift, self.relu = multiplier, shift, bool(relu)

    @property
    def shape(self):
        """``(M, K, N)``."""
        return self.a.shape[0], self.a.shape[1], self.w.shape[1]


def _pad(x, rows, cols):
    return torch.nn.functional.pad(x, (0, cols - x.shape[1], 0, rows - x.shape[0]))


def engine_streams(job):
    """The payloads of one job on each engine stream, as plain Python values, in order (the
    orders of :class:`~hw.gemm.engine.TensorEngine` for the job's dataflow)."""
    cfg = job.config
    rows, cols = cfg.rows, cfg.cols
    m, k, n = job.shape
    nt = math.ceil(n / cols)
    mult = torch.nn.functional.pad(job.multiplier, (0, nt * cols - n))
    shift = torch.nn.functional.pad(job.shift, (0, nt * cols - n))
    streams = {
        "cmd": [{"m": m, "k": k, "n": n, "relu": int(job.relu)}],
        "q": [{"multiplier": mult[t * cols:(t + 1) * cols].tolist(),
               "shift": shift[t * cols:(t + 1) * cols].tolist()} for t in range(nt)],
    }
    if cfg.dataflow == "ws":
        kt = math.ceil(k / rows)
        a = _pad(job.a, m, kt * rows)
        w = _pad(job.w, kt * rows, nt * cols)
        streams["a"] = [a[i, t * rows:(t + 1) * rows].tolist()
                        for t in range(kt) for i in range(m)]
        streams["w"] = [w[r, t * cols:(t + 1) * cols].tolist()
                        for t in range(nt) for r in range(rows * kt)]
    else:
        mt = math.ceil(m / rows)
        a = _pad(job.a, mt * rows, k)
        w = _pad(job.w, k, nt * cols)
        streams["a"] = [a[t * rows:(t + 1) * rows, i].tolist()
                        for t in range(mt) for i in range(k)]
        streams["w"] = [w[r, t * cols:(t + 1) * cols].tolist()
                        for t in range(nt) for r in range(k)]
    return streams


def output_count(job):
    """Vectors the engine sends on ``c`` for ``job``: M per n-tile."""
    m, _, n = job.shape
    return m * math.ceil(n / job.config.cols)


def _collect(job, vectors):
    """C (M, N) from the engine's output vectors (n-tile outer, m inner)."""
    m, _, n = job.shape
    cols = job.config.cols
    nt = math.ceil(n / cols)
    c = torch.tensor(vectors, dtype=torch.int64).reshape(nt, m, cols)
    return c.permute(1, 0, 2).reshape(m, nt * cols)[:, :n]


def run_engine(jobs, *, seed=0, stall=0.0):
    """Run ``jobs`` (all on one config) back to back on :class:`~hw.gemm.engine.TensorEngine`
    in amaranth.sim.

    ``stall`` is the probability of a random idle cycle on every stream, both directions.

    Returns
    -------
    (list of torch.Tensor, list of int, float)
        C per job (int64, M x N), cycles per job from its ``cmd`` transfer to its last ``c``
        transfer inclusive, and simulated cycles per second of wall time.
    """
    import time
    from amaranth.sim import Simulator
    from hw.gemm.engine import TensorEngine
    from sim.pysim_stream import stream_get, stream_put

    configs = {job.config for job in jobs}
    if len(configs) != 1:
        raise ValueError(f"sw.gemm.run_engine: all jobs must share one config, got "
                         f"{len(configs)}")
    dut = TensorEngine(config=configs.pop())
    rng = random.Random(seed)
    streams = [engine_streams(job) for job in jobs]
    outputs = [[] for _ in jobs]
    counts = [output_count(job) for job in jobs]
    marks = {"cmd": [], "c": []}

    def feeder(port):
        async def feed(ctx):
            for s in streams:
                for payload in s[port]:
                    await stream_put(ctx, getattr(dut, port), payload, rng=rng, stall=stall)
        return feed

    async def drain(ctx):
        for n, count in enumerate(counts):
            for _ in range(count):
                vector = await stream_get(ctx, dut.c, rng=rng, stall=stall)
                outputs[n].append([vector[j] for j in range(len(vector))])

    total = sum(counts)

    async def monitor(ctx):
        cycle = 0
        while True:
            _, _, *v = await ctx.tick().sample(dut.cmd.valid, dut.cmd.ready,
                                               dut.c.valid, dut.c.ready)
            if v[0] and v[1]:
                marks["cmd"].append(cycle)
            if v[2] and v[3]:
                marks["c"].append(cycle)
            cycle += 1
            if cycle > 100 * total + 100_000:
                raise AssertionError(f"engine stuck after {len(marks['c'])} of {total} "
                                     f"outputs")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for port in ("cmd", "q", "a", "w"):
        sim.add_testbench(feeder(port))
    sim.add_testbench(drain)
    sim.add_process(monitor)
    started = time.monotonic()
    sim.run()
    elapsed = time.monotonic() - started
    ends = [sum(counts[:n + 1]) - 1 for n in range(len(jobs))]
    cycles = [marks["c"][end] - marks["cmd"][n] + 1 for n, end in enumerate(ends)]
    rate = (marks["c"][-1] + 1) / elapsed if elapsed > 0 else float("inf")
    return [_collect(job, out) for job, out in zip(jobs, outputs)], cycles, rate


def matmul(a, w, multiplier, shift, *, config, relu=False, seed=0, stall=0.0):
    """``requant(a @ w)`` on the simulated engine: int8 (M, N) as ``torch.int64``."""
    (c,), _, _ = run_engine([GemmJob(config, a, w, multiplier, shift, relu=relu)],
                            seed=seed, stall=stall)
    return c


def requant_scale(scale, *, scale_bits=16):
    """``(multiplier, shift)`` per channel with ``multiplier / 2**shift ~= scale`` and
    ``multiplier`` using the ``scale_bits - 1`` magnitude bits (scales > 0)."""
    scale = torch.as_tensor(scale, dtype=torch.float64).reshape(-1)
    if not bool((scale > 0).all()):
        raise ValueError("sw.gemm.requant_scale: scales must be positive")
    top = (1 << (scale_bits - 1)) - 1
    shift = torch.clamp(torch.floor(torch.log2(top / scale)), 0, 62).to(torch.int64)
    multiplier = torch.clamp(torch.round(scale * torch.exp2(shift.to(torch.float64))), 1, top)
    return multiplier.to(torch.int64), shift


def linear(x, layer, *, config, out_scale, relu=False, seed=0):
    """A float ``torch.nn.Linear`` through the engine: activations quantized per tensor,
    weights per output channel to ``config.weight_bits``, the int32 sums requantized to int8
    with scale ``s_x * s_w[n] / out_scale``, the bias added after dequantization. ``relu``
    runs in the engine for a layer without bias, on the host after the bias otherwise.

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        The float64 output ``(..., out_features)`` and its int8 codes (``out_scale`` each).
    """
    if not isinstance(layer, torch.nn.Linear):
        raise TypeError(f"sw.gemm.linear: layer must be a torch.nn.Linear, not {layer!r}")
    if x.shape[-1] != layer.in_features:
        raise ValueError(f"sw.gemm.linear: shape mismatch: x has {x.shape[-1]} features, the "
                         f"layer takes {layer.in_features}")
    flat = x.reshape(-1, layer.in_features)
    qx, sx = quantize_activations(flat)
    qw, sw = quantize_weights(layer.weight.detach().t(), config.weight_bits)
    multiplier, shift = requant_scale(sx * sw / out_scale, scale_bits=config.scale_bits)
    codes = matmul(qx, qw, multiplier, shift, config=config,
                   relu=relu and layer.bias is None, seed=seed)
    y = codes.to(torch.float64) * out_scale
    if layer.bias is not None:
        y = y + layer.bias.detach().to(torch.float64)
        if relu:
            y = y.clamp(min=0)
    return y.reshape(*x.shape[:-1], layer.out_features), codes
