"""cocotb drivers for valid/ready streams, with seeded random stalls.

Amaranth names the members of a stream port ``<port>__payload``, ``<port>__valid`` and
``<port>__ready`` in the Verilog it emits; both classes take the port name.

Both sides sample with :class:`~cocotb.triggers.ReadOnly` before a rising edge, so a transfer is
counted exactly when ``valid & ready`` hold at the edge, whatever the simulator's event order.
A side that sees no transfer for ``timeout_cycles`` raises instead of hanging.
"""

from cocotb.triggers import ReadOnly, RisingEdge


__all__ = ["StreamSource", "StreamSink", "StreamTimeout"]


class StreamTimeout(AssertionError):
    pass


class _Port:
    def __init__(self, dut, port, clk, rng, stall, timeout_cycles):
        self.payload = getattr(dut, f"{port}__payload")
        self.valid = getattr(dut, f"{port}__valid")
        self.ready = getattr(dut, f"{port}__ready")
        self.clk = clk if clk is not None else dut.clk
        self.port = port
        self.rng = rng
        self.stall = stall
        self.timeout_cycles = timeout_cycles

    def _stalls(self):
        return self.rng is not None and self.stall > 0 and self.rng.random() < self.stall


class StreamSource(_Port):
    """Drives a stream into the DUT: ``await source.send(payloads)``.

    With probability ``stall`` per cycle it withholds ``valid`` before offering the next item.
    """

    def __init__(self, dut, port, *, clk=None, rng=None, stall=0.0, timeout_cycles=10_000):
        super().__init__(dut, port, clk, rng, stall, timeout_cycles)
        self.valid.value = 0

    async def send(self, payloads):
        for item in payloads:
            while self._stalls():
                self.valid.value = 0
                await RisingEdge(self.clk)
            self.payload.value = item
            self.valid.value = 1
            for _ in range(self.timeout_cycles):
                await ReadOnly()
                accepted = bool(self.ready.value)
                await RisingEdge(self.clk)
                if accepted:
                    break
            else:
                raise StreamTimeout(f"{self.port}: item not accepted in {self.timeout_cycles} "
                                    f"cycles")
        self.valid.value = 0


class StreamSink(_Port):
    """Takes a stream out of the DUT: ``items = await sink.receive(n)``.

    With probability ``stall`` per cycle it holds ``ready`` low.
    """

    def __init__(self, dut, port, *, clk=None, rng=None, stall=0.0, timeout_cycles=10_000):
        super().__init__(dut, port, clk, rng, stall, timeout_cycles)
        self.ready.value = 0

    async def receive(self, count):
        items = []
        idle = 0
        while len(items) < count:
            ready = not self._stalls()
            self.ready.value = int(ready)
            await ReadOnly()
            if ready and self.valid.value:
                items.append(int(self.payload.value))
                idle = 0
            else:
                idle += 1
                if idle > self.timeout_cycles:
                    raise StreamTimeout(f"{self.port}: no item in {self.timeout_cycles} cycles "
                                        f"({len(items)} of {count} received)")
            await RisingEdge(self.clk)
        self.ready.value = 0
        return items
