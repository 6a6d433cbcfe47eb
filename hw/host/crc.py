"""CRC-16/CCITT-FALSE over a byte stream, one byte per clock.

Why this CRC and not a CRC-8: frames carry up to :data:`~hw.host.config.MAX_WORDS_LIMIT` words
(4 KiB). CRC-16/CCITT (polynomial 0x1021) keeps a Hamming distance of 4 up to 32751 message bits,
so every 1-, 2- and 3-bit error and every burst of up to 16 bits is caught in any frame we send;
the best CRC-8 polynomials keep distance 4 only up to about a hundred bits, i.e. a few bytes, and
miss 1 corrupted frame in 256 beyond that. The "FALSE" variant (initial value 0xFFFF, no
reflection, no final XOR) catches leading zero bytes, and because it is not reflected, running it
over a message followed by its CRC sent most significant byte first leaves a zero remainder: the
receiver checks a frame by testing its register for zero, with no comparator.

A byte update is linear over GF(2): each bit of the next CRC is the XOR of a fixed set of bits of
the current CRC and of the data byte. :func:`crc16_update_matrix` finds those sets once, in Python,
and the hardware is one XOR tree (at most 7 inputs, two LUT4 levels) per bit.
"""

from amaranth.hdl import Cat, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


__all__ = ["CRC16_POLY", "CRC16_INIT", "crc16_update_matrix", "CRC16"]


CRC16_POLY = 0x1021
CRC16_INIT = 0xFFFF


def _bitwise_step(crc, byte):
    # The textbook MSB-first shift register, used only to derive the XOR matrix.
    crc ^= byte << 8
    for _ in range(8):
        crc = ((crc << 1) ^ CRC16_POLY if crc & 0x8000 else crc << 1) & 0xFFFF
    return crc


def crc16_update_matrix():
    """For each bit ``n`` of the next CRC, the indices of the bits it XORs together.

    Indices 0..15 are bits of the current CRC, 16..23 bits of the data byte. Found by pushing
    each input bit alone through the update, which is valid because the update is linear.
    """
    taps = [[] for _ in range(16)]
    for index in range(24):
        crc, byte = (1 << index, 0) if index < 16 else (0, 1 << (index - 16))
        out = _bitwise_step(crc, byte)
        for n in range(16):
            if out >> n & 1:
                taps[n].append(index)
    return taps


class CRC16(wiring.Component):
    """CRC-16/CCITT-FALSE register updated with one byte per clock cycle.

    Interface attributes
    --------------------
    clear : ``In(1)``
        Load the initial value 0xFFFF at the next clock edge (takes precedence over ``en``).
    en : ``In(1)``
        Fold ``data`` into the CRC at the next clock edge.
    data : ``In(8)``
        The byte folded in when ``en`` is high.
    crc : ``Out(16)``
        The CRC of the bytes folded in since the last ``clear``; a register, so it shows a
        byte's effect from the cycle after its ``en``. Send it most significant byte first.
    zero : ``Out(1)``
        ``crc == 0``: a message followed by its own CRC has been folded in.
    """

    clear: In(1)
    en: In(1)
    data: In(8)
    crc: Out(16, init=CRC16_INIT)
    zero: Out(1)

    def elaborate(self, platform):
        m = Module()
        bits = Cat(self.crc, self.data)
        next_crc = Cat(*(Cat(bits[i] for i in taps).xor() for taps in crc16_update_matrix()))
        with m.If(self.clear):
            m.d.sync += self.crc.eq(CRC16_INIT)
        with m.Elif(self.en):
            m.d.sync += self.crc.eq(next_crc)
        m.d.comb += self.zero.eq(self.crc == 0)
        return m
