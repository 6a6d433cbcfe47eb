"""The bus face of an accelerator, generated from its signature: every stream port becomes a
window (:mod:`hw.host.stream_window`), every other output port a read-only status word.

An accelerator named ``gemm`` with ports ``cmd``, ``a`` (in) and ``c`` (out) and an output
signal ``errors`` gets the regions ``gemm_cmd``, ``gemm_a``, ``gemm_c`` (windows of
``2**window_bits`` words) and ``gemm_signals`` (one word per 32 bits of each output signal, in
signature order, least significant word first). The address map therefore follows from the
accelerators' configs alone, and the host learns it from the JSON written beside the build.
"""

from amaranth.hdl import Module, Shape, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import Flow, In

from ..host.bus import DATA_WIDTH, BusSignature
from ..host.stream_window import StreamInWindow, StreamOutWindow, words_per_item


__all__ = ["AcceleratorBus", "SignalWords"]


class SignalWords(wiring.Component):
    """Output signals of an accelerator as read-only bus words (writes are ignored)."""

    def __init__(self, widths):
        self._widths = widths
        words = sum(-(-w // DATA_WIDTH) for w in widths.values())
        self._words = words
        super().__init__({"bus": In(BusSignature(max(0, (words - 1).bit_length()))),
                          **{name: In(width) for name, width in widths.items()}})

    def elaborate(self, platform):
        m = Module()
        words = []
        for name in self._widths:
            value = getattr(self, name)
            for n in range(0, len(value), DATA_WIDTH):
                # Widened to a full word before the address mux: Yosys's opt_share fails an
                # assertion when it merges mux inputs of different widths here.
                word = Signal(DATA_WIDTH, name=f"{name}_word{n // DATA_WIDTH}")
                m.d.comb += word.eq(value[n:n + DATA_WIDTH])
                words.append(word)
        m.d.comb += self.bus.ack.eq(self.bus.req)
        with m.Switch(self.bus.addr):
            for n, word in enumerate(words):
                with m.Case(n):
                    m.d.comb += self.bus.r_data.eq(word)
        return m


class AcceleratorBus:
    """Bus regions and peripherals for one accelerator.

    Parameters
    ----------
    name : str
        Prefix of the region names.
    core : wiring.Component
        The accelerator. Its ports must be streams, or plain outputs (status); an input that is
        not a stream has nothing to drive it and is rejected.
    window_bits : int
        Word address bits of each stream window (a block of ``2**window_bits - 1`` words fits
        after its status word).
    depth : int
        Items each window queues.
    """

    def __init__(self, name, core, *, window_bits, depth):
        self.name, self.core = name, core
        self.window_bits, self.depth = window_bits, depth
        self.streams = {}
        self.signals = {}
        for port, member in core.signature.members.items():
            if member.is_signature and isinstance(member.signature, stream.Signature):
                self.streams[port] = member
            elif member.is_port and member.flow == Flow.Out:
                self.signals[port] = Shape.cast(member.shape).width
            else:
                raise ValueError(f"accelerator {name!r}: port {port!r} is neither a stream nor "
                                 f"an output: the bus cannot drive it")

    @property
    def regions(self):
        """``(region name, size in words)`` of this accelerator, in port order."""
        regions = [(f"{self.name}_{port}", 1 << self.window_bits) for port in self.streams]
        if self.signals:
            regions.append((f"{self.name}_signals",
                            sum(-(-w // DATA_WIDTH) for w in self.signals.values())))
        return regions

    def describe(self):
        """What the host needs to drive each region: JSON-ready."""
        ports = {}
        for port, member in self.streams.items():
            shape = member.signature.members["payload"].shape
            ports[port] = {"region": f"{self.name}_{port}",
                           "direction": "to_device" if member.flow == Flow.In else "from_device",
                           "payload_bits": Shape.cast(shape).width,
                           "words_per_item": words_per_item(shape), "depth": self.depth}
        return {"streams": ports, "signals": dict(self.signals)}

    def elaborate_into(self, m, decoder):
        """Add the accelerator and its windows to ``m``, on the ports of ``decoder``."""
        m.submodules[self.name] = self.core
        for port, member in self.streams.items():
            shape = member.signature.members["payload"].shape
            region = f"{self.name}_{port}"
            cls = StreamInWindow if member.flow == Flow.In else StreamOutWindow
            window = cls(shape, depth=self.depth, span_bits=self.window_bits)
            m.submodules[f"{region}_window"] = window
            wiring.connect(m, getattr(decoder, region), window.bus)
            if member.flow == Flow.In:
                wiring.connect(m, window.stream, getattr(self.core, port))
            else:
                wiring.connect(m, getattr(self.core, port), window.stream)
        if self.signals:
            words = SignalWords(self.signals)
            m.submodules[f"{self.name}_signals"] = words
            wiring.connect(m, getattr(decoder, f"{self.name}_signals"), words.bus)
            for port in self.signals:
                m.d.comb += getattr(words, port).eq(Value.cast(getattr(self.core, port)))
