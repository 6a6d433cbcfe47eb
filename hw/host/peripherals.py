"""The two basic bus peripherals: a register bank and a memory window (protocol: :mod:`hw.host.bus`)."""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..lib.config import check_int
from .bus import DATA_WIDTH, BusSignature


__all__ = ["RegisterBank", "MemoryWindow"]


def _check_words(owner, words):
    return check_int("words", words, min=1, max=1 << 20, owner=owner)


class RegisterBank(wiring.Component):
    """``words`` read/write 32-bit registers on the bus, also visible as outputs.

    Interface attributes
    --------------------
    bus : ``In(BusSignature(span_bits))``
        Acknowledged in the cycle of ``req`` (combinational ``ack`` and ``r_data``); a write
        takes effect at that clock edge.
    regs : ``Out(data.ArrayLayout(32, words))``
        Register values, as registers (what an accelerator's control inputs would read).
    """

    def __init__(self, *, words):
        self._words = _check_words("RegisterBank", words)
        super().__init__({
            "bus": In(BusSignature((words - 1).bit_length())),
            "regs": Out(data.ArrayLayout(DATA_WIDTH, words)),
        })

    @property
    def words(self):
        return self._words

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [
            self.bus.ack.eq(self.bus.req),
            self.bus.r_data.eq(self.regs[self.bus.addr]),
        ]
        with m.If(self.bus.req & self.bus.we):
            m.d.sync += self.regs[self.bus.addr].eq(self.bus.w_data)
        return m


class MemoryWindow(wiring.Component):
    """``words`` words of block RAM on the bus.

    Interface attributes
    --------------------
    bus : ``In(BusSignature(span_bits))``
        Writes are acknowledged in the cycle of ``req`` and take effect at that edge. Reads are
        acknowledged one cycle after ``req`` rises (the RAM's registered read port), so a read
        takes two cycles.
    """

    def __init__(self, *, words):
        self._words = _check_words("MemoryWindow", words)
        self._memory = Memory(shape=DATA_WIDTH, depth=words, init=[])
        super().__init__({"bus": In(BusSignature((words - 1).bit_length()))})

    @property
    def words(self):
        return self._words

    @property
    def memory(self):
        """The :class:`~amaranth.lib.memory.Memory` holding the words (for initial contents
        and for simulation to inspect)."""
        return self._memory

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = self._memory
        write = mem.write_port()
        read = mem.read_port()
        # Set in the cycle after a read request: the read port then shows the word at the
        # address the initiator is holding. Cleared with the ack, so back-to-back reads work.
        read_done = Signal()
        m.d.sync += read_done.eq(self.bus.req & ~self.bus.we & ~read_done)
        m.d.comb += [
            read.addr.eq(self.bus.addr),
            write.addr.eq(self.bus.addr),
            write.data.eq(self.bus.w_data),
            write.en.eq(self.bus.req & self.bus.we),
            self.bus.r_data.eq(read.data),
            self.bus.ack.eq(self.bus.req & (self.bus.we | read_done)),
        ]
        return m
