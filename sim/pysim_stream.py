"""Drive and observe :class:`amaranth.lib.stream.Signature` streams from ``amaranth.sim``
testbenches.

The helpers follow the stream rules: a transfer happens at the clock edge where ``valid`` and
``ready`` are both high, as sampled at that edge. Called back to back in one testbench, they keep
``valid`` (or ``ready``) high across items, so a stream can run at one transfer per cycle.

Typical use, with a producer and a consumer testbench on the same simulator::

    async def producer(ctx):
        for item in items:
            await stream_put(ctx, dut.i, item, rng=rng, stall=0.5)

    async def consumer(ctx):
        for _ in items:
            received.append(await stream_get(ctx, dut.o, rng=rng, stall=0.5))
"""

__all__ = ["stream_put", "stream_get"]


def _check_stall(rng, stall):
    if not 0.0 <= stall < 1.0:
        raise ValueError(f"stall={stall!r} is out of range: expected 0.0 <= stall < 1.0")
    if stall and rng is None:
        raise ValueError(f"stall={stall!r} needs an rng (a random.Random) to draw the stalls from")


async def _idle(ctx, rng, stall):
    # Geometric number of idle cycles: each cycle independently idles with probability ``stall``.
    while stall and rng.random() < stall:
        await ctx.tick()


async def stream_put(ctx, stream, payload, *, rng=None, stall=0.0):
    """Send one item on ``stream`` (driving its ``valid`` and ``payload``) and wait until it is
    taken.

    Parameters
    ----------
    ctx : :class:`amaranth.sim.SimulatorContext`
        The testbench context.
    stream : :class:`amaranth.lib.stream.Interface`
        The stream to drive, seen from the source side (e.g. ``dut.i``).
    payload : object
        Value for ``stream.payload`` (anything :meth:`ctx.set` accepts for its shape).
    rng : :class:`random.Random`, optional
        Source of the stalls; required when ``stall`` is non-zero.
    stall : :class:`float`
        Probability, drawn anew each cycle, of holding ``valid`` low one more cycle before
        offering the item; ``0.0`` offers it at once.

    Returns when the transfer has happened: the simulation is then just past the clock edge at
    which ``valid & ready`` was sampled high, and ``valid`` has been lowered again (the next call
    raises it again before any further edge, so back-to-back calls keep the stream busy).
    """
    _check_stall(rng, stall)
    await _idle(ctx, rng, stall)
    ctx.set(stream.payload, payload)
    ctx.set(stream.valid, 1)
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def stream_get(ctx, stream, *, rng=None, stall=0.0):
    """Receive one item from ``stream`` (driving its ``ready``) and return its payload.

    Parameters
    ----------
    ctx : :class:`amaranth.sim.SimulatorContext`
        The testbench context.
    stream : :class:`amaranth.lib.stream.Interface`
        The stream to consume, seen from the sink side (e.g. ``dut.o``).
    rng : :class:`random.Random`, optional
        Source of the stalls; required when ``stall`` is non-zero.
    stall : :class:`float`
        Probability, drawn anew each cycle, of holding ``ready`` low one more cycle before
        accepting; ``0.0`` accepts at once.

    Returns the payload sampled at the clock edge of the transfer (a plain :class:`int`, or
    whatever ``ctx.get`` gives for a shape-castable payload such as a layout). On return,
    ``ready`` has been lowered again, as in :func:`stream_put`.
    """
    _check_stall(rng, stall)
    await _idle(ctx, rng, stall)
    ctx.set(stream.ready, 1)
    payload, = await ctx.tick().sample(stream.payload).until(stream.valid)
    ctx.set(stream.ready, 0)
    return payload
