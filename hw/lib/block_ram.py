"""A simple dual-port memory whose read data leaves a register: ECP5 EBR output registers.

Yosys maps a synchronous read port to ``DP16KD`` block RAM without its output register
(``REGMODE="NOREG"``), and the data then leaves the block about 6 ns after the clock on a
speed-6 85F: with a route across the die to its consumer, no more than ~80 MHz. On ECP5,
:class:`RegisteredRAM` therefore instantiates the ``DP16KD`` cells itself with
``REGMODE_B="OUTREG"``; on any other platform (simulation, Verilog for ASIC flows) it is a
:class:`~amaranth.lib.memory.Memory` followed by a register, with the same latency.
"""

from amaranth.hdl import Array, Cat, ClockSignal, Const, Instance, Module, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .config import check_int


__all__ = ["RegisteredRAM"]


# DP16KD aspect ratios: data width -> lowest address bit used (the depth is 2**(14 - shift)).
_EBR_SHIFT = {1: 0, 2: 1, 4: 2, 9: 3, 18: 4}
_EBR_ABITS = 14


def _ebr_mode(depth):
    """The widest ``DP16KD`` data width whose depth holds ``depth`` words, and how many
    blocks deep the memory is (more than one only beyond 16 Ki words)."""
    fits = [w for w, shift in _EBR_SHIFT.items() if depth <= 1 << (_EBR_ABITS - shift)]
    width = max(fits, default=1)
    return width, -(-depth // (1 << (_EBR_ABITS - _EBR_SHIFT[width])))


class RegisteredRAM(wiring.Component):
    """``depth`` words of ``width`` bits, one write port and one read port, read latency 2.

    Parameters
    ----------
    width, depth : int
        Word width and number of words.

    Interface attributes
    --------------------
    w_en, w_addr, w_data : ``In``
        Write ``w_data`` at ``w_addr`` where ``w_en`` is high. The write is registered (the
        block RAMs are spread across the die, away from the logic deciding the write) and the
        word stored at the edge that ends the next cycle.
    r_en, r_addr : ``In``
        Read the word at ``r_addr`` where ``r_en`` is high (the address is sampled at the edge).
    r_data : ``Out(width)``
        The word read, from the second cycle after ``r_en``. A read whose ``r_en`` is in the
        cycle after a write's ``w_en`` returns an unspecified value; a later one the new word.
    """

    def __init__(self, *, width, depth):
        self._width = check_int("width", width, min=1, owner="RegisteredRAM")
        self._depth = check_int("depth", depth, min=2, owner="RegisteredRAM")
        addr = unsigned((depth - 1).bit_length())
        self._memory = None
        super().__init__({
            "w_en": In(1), "w_addr": In(addr), "w_data": In(width),
            "r_en": In(1), "r_addr": In(addr),
            "r_data": Out(width),
        })

    @property
    def memory(self):
        """The :class:`~amaranth.lib.memory.Memory` holding the words, for testbenches; there is
        one only once elaborated for a platform other than ECP5 (e.g. by a simulator)."""
        if self._memory is None:
            raise AttributeError("RegisteredRAM.memory exists only once elaborated off ECP5")
        return self._memory

    @property
    def latency(self):
        """Cycles from ``r_en`` to ``r_data``."""
        return 2

    def elaborate(self, platform):
        if getattr(platform, "family", None) == "ecp5":
            return self._ecp5()
        m = Module()
        m.submodules.words = words = Memory(shape=self._width, depth=self._depth, init=[])
        self._memory = words
        wr, rd = words.write_port(), words.read_port()
        m.d.sync += [wr.addr.eq(self.w_addr), wr.data.eq(self.w_data), wr.en.eq(self.w_en)]
        m.d.comb += [rd.addr.eq(self.r_addr), rd.en.eq(self.r_en)]
        m.d.sync += self.r_data.eq(rd.data)
        return m

    def _ecp5(self):
        m = Module()
        ebr_width, banks = _ebr_mode(self._depth)
        shift = _EBR_SHIFT[ebr_width]
        words = _EBR_ABITS - shift
        columns = -(-self._width // ebr_width)
        w_en = Signal()
        w_addr = Signal.like(self.w_addr)
        w_data = Signal(columns * ebr_width)
        m.d.sync += [w_en.eq(self.w_en), w_addr.eq(self.w_addr), w_data.eq(self.w_data)]
        if banks > 1:
            # Beyond one bank deep, the bank of a read is known two cycles later, when its word
            # leaves the output registers of every bank.
            r_bank = [Signal(range(banks), name=f"r_bank{n}") for n in range(2)]
            m.d.sync += [r_bank[0].eq(self.r_addr[words:]), r_bank[1].eq(r_bank[0])]
        outs = []
        for bank in range(banks):
            w_sel = w_en & (w_addr[words:] == bank) if banks > 1 else w_en
            r_sel = self.r_en & (self.r_addr[words:] == bank) if banks > 1 else self.r_en
            out = Signal(columns * ebr_width, name=f"bank{bank}")
            outs.append(out)
            for col in range(columns):
                lo = col * ebr_width
                m.submodules[f"ebr_{bank}_{col}"] = self._dp16kd(
                    ebr_width, shift, w_sel, w_addr[:words], w_data[lo:lo + ebr_width],
                    r_sel, self.r_addr[:words], out[lo:lo + ebr_width])
        data = Array(outs)[r_bank[1]] if banks > 1 else outs[0]
        m.d.comb += self.r_data.eq(data[:self._width])
        return m

    @staticmethod
    def _dp16kd(width, shift, w_en, w_addr, w_data, r_en, r_addr, r_data):
        def pins(prefix, addr, extra_low):
            full = Cat(extra_low, addr)
            return {f"i_{prefix}{n}": full[n] if n < len(full) else 0 for n in range(_EBR_ABITS)}
        # In the 18-bit mode the two lowest address pins of a write port are its byte enables.
        low = Const(0b11 if width == 18 else 0, shift)
        ports = {
            "p_DATA_WIDTH_A": width, "p_DATA_WIDTH_B": width,
            "p_REGMODE_A": "NOREG", "p_REGMODE_B": "OUTREG",
            "p_RESETMODE": "SYNC", "p_ASYNC_RESET_RELEASE": "SYNC",
            "p_CSDECODE_A": "0b000", "p_CSDECODE_B": "0b000",
            "p_WRITEMODE_A": "NORMAL", "p_WRITEMODE_B": "NORMAL", "p_GSR": "DISABLED",
            "i_CLKA": ClockSignal(), "i_CEA": 1, "i_OCEA": 1, "i_RSTA": 0, "i_WEA": w_en,
            "i_CLKB": ClockSignal(), "i_CEB": r_en, "i_OCEB": 1, "i_RSTB": 0, "i_WEB": 0,
            **pins("ADA", w_addr, low), **pins("ADB", r_addr, Const(0, shift)),
        }
        for n in range(3):
            ports[f"i_CSA{n}"] = ports[f"i_CSB{n}"] = 0
        for n in range(18):
            ports[f"i_DIA{n}"] = w_data[n] if n < width else 0
            ports[f"i_DIB{n}"] = 0
            if n < width:
                ports[f"o_DOB{n}"] = r_data[n]
        return Instance("DP16KD", **ports)

