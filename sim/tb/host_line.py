"""The host side of a UART line, for testbenches: characters to pin levels, and sampled pin
levels back to characters with a strict timing check.

Simulator-neutral: ``amaranth.sim`` tests and the cocotb testbench ``sim.tb.host_bridge`` both use
it. 8N1 framing: start bit 0, data bits least significant first, stop bit 1.
"""

__all__ = ["char_levels", "decode_line", "LineError"]


class LineError(AssertionError):
    """The sampled line is not a sequence of well-timed characters."""


def char_levels(byte, *, stop=1):
    """The 10 bit levels of one character (``stop=0`` makes a framing error)."""
    return [0] + [(byte >> n) & 1 for n in range(8)] + [stop]


def decode_line(levels, divisor):
    """Characters in ``levels``, one sample per clock cycle of a line driven by a transmitter
    whose bits last exactly ``divisor`` cycles.

    Returns ``[(start_cycle, byte), ...]``. Every cycle of every bit must hold the bit's level, so
    a transmitter with jittery or stretched bits fails here, not just one with wrong data.

    Raises
    ------
    LineError
        On a bit that changes within its period, a low stop bit or a truncated character.
    """
    chars = []
    n = 0
    while n < len(levels):
        if levels[n]:
            n += 1
            continue
        if n + 10 * divisor > len(levels):
            raise LineError(f"cycle {n}: character truncated at the end of the record")
        bits = []
        for k in range(10):
            period = levels[n + k * divisor:n + (k + 1) * divisor]
            if len(set(period)) != 1:
                raise LineError(f"cycle {n}: bit {k} is not steady for {divisor} cycles: {period}")
            bits.append(period[0])
        if not bits[9]:
            raise LineError(f"cycle {n}: stop bit is low")
        chars.append((n, sum(b << i for i, b in enumerate(bits[1:9]))))
        n += 10 * divisor
    return chars
