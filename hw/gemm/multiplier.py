"""Registered signed multipliers for the PEs: an ECP5 DSP with its own registers, or LUT logic.

Both kinds have the same ports, registers and latency (:data:`~hw.gemm.config.MULTIPLIER_LATENCY`
= 3), so an array's timing does not depend on which one its PEs use.
"""

from amaranth.hdl import ClockSignal, Const, Instance, Module, Mux, ResetSignal, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..lib.config import check_choice, check_int
from .config import MULTIPLIER_LATENCY


__all__ = ["Multiplier", "lut_partial_products", "dsp_grid", "registered_dsp_product",
           "DSP_WIDTH", "MULTIPLIER_KINDS"]


#: ``dsp``: a MULT18X18D with input and output registers on ECP5, ``*`` between the same
#: registers elsewhere; ``lut``: shift/add/mux logic for narrow (<= 4-bit) ``b`` operands.
#: Both add a fabric register after the product.
MULTIPLIER_KINDS = ("dsp", "lut")

#: Operand bits of a MULT18X18D.
DSP_WIDTH = 18
_LUT_MAX_B_BITS = 4

#: MULT18X18D sites of ECP5 dies, by the part number's size suffix: the nextpnr rows (``Y``) of
#: the DSP rows and, in each, the first column (``X``) of each DSP block. A block holds four
#: MULT18X18D, at columns ``x``, ``x + 1``, ``x + 4`` and ``x + 5`` (nextpnr bel
#: ``X{column}/Y{row}/MULT18_{column - x}``), which share their clock, enable and reset nets
#: (at most four distinct nets of each per block). Read from the tiles of placed designs.
_DSP_SITES = {
    "45F": ((22, 46), (4, 13, 22, 31, 42, 51, 60, 69, 78)),
}
_BLOCK_OFFSETS = (0, 1, 4, 5)


def dsp_grid(platform):
    """``(dsp_rows, sites_per_row)`` of the MULT18X18D sites of ``platform``'s device, for
    :class:`Multiplier`'s ``site``; ``None`` where the sites are not known (not an ECP5, or a
    die not in the table). Sites ``4 b`` to ``4 b + 3`` of a row are one DSP block."""
    if not _is_ecp5(platform):
        return None
    sites = _DSP_SITES.get(platform.device.rsplit("-", 1)[-1])
    if sites is None:
        return None
    rows, blocks = sites
    return len(rows), len(blocks) * len(_BLOCK_OFFSETS)


def _dsp_bel(platform, site):
    rows, blocks = _DSP_SITES[platform.device.rsplit("-", 1)[-1]]
    row, index = site
    offset = _BLOCK_OFFSETS[index % len(_BLOCK_OFFSETS)]
    return f"X{blocks[index // len(_BLOCK_OFFSETS)] + offset}/Y{rows[row]}/MULT18_{offset}"


def lut_partial_products(a, b):
    """``a * b`` for a signed ``b`` of at most 4 bits as two halves whose sum is the product,
    in shift/add/mux logic (no ``$mul``, so Yosys never maps it to a DSP).

    Two's complement: ``b = -2**(n-1) b[n-1] + sum 2**i b[i]``, so the product is one partial
    product ``a << i`` per bit, selected by that bit, the top one subtracted. The low and high
    bits of ``b`` are summed separately so that a register can sit between the halves' adders
    and the final one.
    """
    n = len(b)
    terms = [Mux(b[i], a.shift_left(i), 0) for i in range(n)]
    terms[-1] = -terms[-1]
    half = n // 2
    return sum(terms[:half]), sum(terms[half:])


def _is_ecp5(platform):
    return getattr(platform, "family", None) == "ecp5"


class Multiplier(wiring.Component):
    """Signed ``a`` x ``b`` with registered operands and a product registered twice.

    Parameters
    ----------
    a_bits, b_bits : int
        Operand widths (signed), 2..18; ``kind="lut"`` needs ``b_bits <= 4``.
    kind : {"dsp", "lut"}
        ``dsp``: on an ECP5 platform one ``MULT18X18D`` whose input A/B and output registers
        are the first three registers below (clock enables CE0/CE1/CE2), followed by a fabric
        register; with any other platform or none (simulation, Verilog for ASIC flows) the
        same registers around ``*``. ``lut``: :func:`lut_partial_products` between the operand
        registers and the first product register (which holds the two halves, or for a 2-bit
        ``b`` their sum), their sum between it and the second; no DSP.
    b_reset : Value or None
        For callers that track validity themselves: when given, the ``b`` register is reset
        by this (e.g. a local, delayed copy of the reset; ``Const(0)`` for a ``b`` register
        that is loaded before its contents matter) instead of the domain reset, and the ``a``
        register and both product registers are not reset at all, so that no global reset
        net reaches the multiplier. For ``kind="lut"`` everywhere (then an ``a`` register
        equal to a caller's reset-less copy of the operand is one flip-flop after Yosys
        merges them, and the multipliers' flip-flops share a slice's reset with the caller's
        data registers); for ``kind="dsp"`` on ECP5 only (simulation keeps the reset of every
        register).
    site : tuple of int or None
        ECP5 DSP only: ``(row, index)`` of the MULT18X18D site to place the DSP at, in the
        grid of :func:`dsp_grid` (a placement constraint for nextpnr, so that a caller can
        floorplan an array of multipliers). Ignored where :func:`dsp_grid` is ``None``.

    Interface attributes
    --------------------
    a, b : In(signed(a_bits)), In(signed(b_bits))
        Operands, loaded into their registers at clock edges where ``a_en`` (resp. ``b_en``)
        is high.
    a_en, b_en, p_en : In(1)
        Clock enables of the ``a`` and ``b`` registers and of both product registers.
    p : Out(signed(a_bits + b_bits))
        The second product register. At an edge where ``p_en`` is high the first product
        register loads the product of the operand registers and ``p`` loads the first. With all
        enables high, ``p`` shows ``a * b`` :attr:`latency` = 3 cycles after ``a``/``b``. All
        registers reset to 0.

    Raises
    ------
    ValueError
        For a width out of range or an unknown ``kind``, naming the parameter.
    """

    def __init__(self, *, a_bits, b_bits, kind="dsp", b_reset=None, site=None):
        check_choice("kind", kind, MULTIPLIER_KINDS, owner="Multiplier")
        check_int("a_bits", a_bits, min=2, max=DSP_WIDTH, owner="Multiplier")
        check_int("b_bits", b_bits, min=2,
                  max=_LUT_MAX_B_BITS if kind == "lut" else DSP_WIDTH, owner="Multiplier")
        self._a_bits = a_bits
        self._b_bits = b_bits
        self._kind = kind
        self._b_reset = b_reset
        self._site = site
        super().__init__({
            "a": In(signed(a_bits)),
            "b": In(signed(b_bits)),
            "a_en": In(1),
            "b_en": In(1),
            "p_en": In(1),
            "p": Out(signed(a_bits + b_bits)),
        })

    @property
    def a_bits(self):
        """Width of ``a``."""
        return self._a_bits

    @property
    def b_bits(self):
        """Width of ``b``."""
        return self._b_bits

    @property
    def kind(self):
        """``"dsp"`` or ``"lut"``."""
        return self._kind

    @property
    def latency(self):
        """Cycles from an operand to its product, with all enables high."""
        return MULTIPLIER_LATENCY

    def elaborate(self, platform):
        m = Module()
        width = self._a_bits + self._b_bits
        dsp = self._kind == "dsp" and _is_ecp5(platform)
        local = self._b_reset is not None and (dsp or self._kind == "lut")
        if dsp:
            product = self._mult18x18d(m, platform)
        else:
            a_reg = Signal(signed(self._a_bits), reset_less=local)
            b_reg = Signal(signed(self._b_bits), reset_less=local)
            with m.If(self.a_en):
                m.d.sync += a_reg.eq(self.a)
            if local:
                with m.If(self._b_reset):
                    m.d.sync += b_reg.eq(0)
                with m.Elif(self.b_en):
                    m.d.sync += b_reg.eq(self.b)
            else:
                with m.If(self.b_en):
                    m.d.sync += b_reg.eq(self.b)
            if self._kind == "lut":
                parts = lut_partial_products(a_reg, b_reg)
                if self._b_bits == 2:
                    # One partial product each: the sum is the carry chain that negates the
                    # top one anyway, so the first product register holds the product (10
                    # flip-flops fewer per int8 x int2 multiplier).
                    parts = [sum(parts)]
                halves = [Signal(signed(width), name=f"half_{n}", reset_less=local)
                          for n in range(len(parts))]
                with m.If(self.p_en):
                    m.d.sync += [half.eq(part) for half, part in zip(halves, parts)]
                product = sum(halves)
            else:
                product = Signal(signed(width))
                with m.If(self.p_en):
                    m.d.sync += product.eq(a_reg * b_reg)
        if local:
            # Product register without reset (for a DSP, in the fabric after its output register).
            p_reg = Signal.like(self.p, reset_less=True)
            with m.If(self.p_en):
                m.d.sync += p_reg.eq(product)
            m.d.comb += self.p.eq(p_reg)
        else:
            with m.If(self.p_en):
                m.d.sync += self.p.eq(product)
        return m

    def _mult18x18d(self, m, platform):
        """The DSP with its three registers; returns its (registered) product."""
        p = Signal(2 * DSP_WIDTH)
        local = self._b_reset is not None
        placement = {}
        if self._site is not None and dsp_grid(platform) is not None:
            placement["a_BEL"] = _dsp_bel(platform, self._site)
        _mult18x18d(
            m, "dsp", self.a, self.b, p, signed=True,
            enables=(self.a_en, self.b_en, self.p_en),
            resets=(self._b_reset if local else ResetSignal(),),
            **placement,
            # With a local reset, RST1 (tied low) leaves the A and output registers unreset.
            p_REG_INPUTA_CLK="CLK0", p_REG_INPUTA_CE="CE0",
            p_REG_INPUTA_RST="RST1" if local else "RST0",
            p_REG_INPUTB_CLK="CLK0", p_REG_INPUTB_CE="CE1", p_REG_INPUTB_RST="RST0",
            p_REG_OUTPUT_CLK="CLK0", p_REG_OUTPUT_CE="CE2",
            p_REG_OUTPUT_RST="RST1" if local else "RST0")
        return p[:len(self.p)].as_signed()


def _mult18x18d(m, name, a, b, p, *, signed, enables, resets, **params):
    """Add to ``m`` a MULT18X18D on clock CLK0: ``a`` and ``b`` (at most 18 bits each, extended
    as their shapes say) into ``p`` (36 bits), with CE0.. and RST0.. driven by ``enables`` and
    ``resets`` (the rest low), the registers chosen by ``params``."""
    zero = Const(0, 1)
    a_ext = Signal(DSP_WIDTH, name=f"{name}_a")
    b_ext = Signal(DSP_WIDTH, name=f"{name}_b")
    m.d.comb += [a_ext.eq(a), b_ext.eq(b)]
    ports = {
        **{f"i_A{n}": a_ext[n] for n in range(DSP_WIDTH)},
        **{f"i_B{n}": b_ext[n] for n in range(DSP_WIDTH)},
        **{f"o_P{n}": p[n] for n in range(2 * DSP_WIDTH)},
        "i_SIGNEDA": Const(signed, 1), "i_SIGNEDB": Const(signed, 1),
        "i_SOURCEA": zero, "i_SOURCEB": zero,
        "i_CLK0": ClockSignal(), "i_CLK1": zero, "i_CLK2": zero, "i_CLK3": zero,
        **{f"i_CE{n}": enables[n] if n < len(enables) else zero for n in range(4)},
        **{f"i_RST{n}": resets[n] if n < len(resets) else zero for n in range(4)},
    }
    # The C operand feeds only the DSP block's adder, which is not used: it stays unconnected
    # rather than tied low.
    m.submodules[name] = Instance("MULT18X18D", p_REG_INPUTC_CLK="NONE",
                                  p_REG_PIPELINE_CLK="NONE", p_RESETMODE="SYNC",
                                  p_GSR="DISABLED", **params, **ports)


def registered_dsp_product(m, platform, a, b, name):
    """``a * b`` of two unsigned values of at most 18 bits each, registered once: on ECP5 in the
    output register of a MULT18X18D whose inputs are not registered (timing class
    ``MULT18X18D_REGS_OUTPUT``), so that the path into the DSP and the one out of it are in two
    cycles (a product computed in the DSP and registered in the fabric took 3.9 ns of routing
    in, 3.9 ns of multiplier and 4.2 ns of routing out: 79.5 MHz); elsewhere a register after
    ``*``. Returns the register, ``len(a) + len(b)`` bits, without reset."""
    if not (len(a) <= DSP_WIDTH and len(b) <= DSP_WIDTH):
        raise ValueError(f"registered_dsp_product: operands of at most {DSP_WIDTH} bits, not "
                         f"{len(a)} and {len(b)}")
    product = Signal(len(a) + len(b), name=name, reset_less=True)
    if _is_ecp5(platform):
        p = Signal(2 * DSP_WIDTH, name=f"{name}_dsp")
        _mult18x18d(
            m, f"{name}_dsp", a, b, p, signed=False, enables=(Const(1, 1),), resets=(),
            p_REG_INPUTA_CLK="NONE", p_REG_INPUTB_CLK="NONE",
            p_REG_OUTPUT_CLK="CLK0", p_REG_OUTPUT_CE="CE0", p_REG_OUTPUT_RST="RST0")
        m.d.comb += product.eq(p)
    else:
        m.d.sync += product.eq(a * b)
    return product
