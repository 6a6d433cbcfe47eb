"""The short human summary of a build report (DESIGN.md section 6)."""

__all__ = ["summarize"]


#: Cells worth a line, with the name people use for them.
_CELLS = (("TRELLIS_COMB", "LUT4"), ("TRELLIS_FF", "FF"), ("MULT18X18D", "DSP"),
          ("DP16KD", "EBR"), ("TRELLIS_RAMW", "LUTRAM"), ("TRELLIS_IO", "IO"))


def _si(value):
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}"
    return f"{value:.3g} "


def _block_lines(blocks):
    if "error" in blocks:
        return [f"  blocks  not available: {blocks['error']} (log: {blocks['log']})"]
    columns = list(blocks["total"])
    rows = {**blocks["blocks"], "total": blocks["total"]}
    if "flat_total" in blocks:
        rows["flat synthesis"] = blocks["flat_total"]
    width = max(map(len, rows))
    lines = [f"  blocks  of {blocks['core']} (Yosys cells before packing, boundaries kept)",
             f"          {'':<{width}}" + "".join(f"{c:>8}" for c in columns)]
    for name, cells in rows.items():
        lines.append(f"          {name:<{width}}" + "".join(f"{cells[c]:>8}" for c in columns))
    return lines


def summarize(report, report_path):
    device = report["device"]
    lines = [f"{report['design']} on {report['board']} "
             f"({device['part']}-{device['speed']} {device['package']})"]
    clock = report["clock"]
    if abs(clock["target_mhz"] - clock["requested_mhz"]) > 1e-6:
        lines.append(f"  clock   {clock['requested_mhz']:g} MHz requested; the nearest the PLL "
                     f"makes from {clock['oscillator_mhz']:g} MHz is {clock['target_mhz']:.4g} MHz")
    for clock, f in report["fmax"].items():
        status = "met" if f["achieved_mhz"] >= f["constraint_mhz"] else "NOT MET"
        lines.append(f"  fmax    {f['achieved_mhz']:.1f} MHz on {clock} "
                     f"(target {f['constraint_mhz']:.1f} MHz, timing {status})")
    util = report["utilization"]
    for cell, label in _CELLS:
        if cell in util:
            used, avail = util[cell]["used"], util[cell]["available"]
            lines.append(f"  {label:<7} {used:>6} / {avail:<6} ({100 * used / avail:.1f}%)")
    for name, value in report["peak_throughput"].items():
        lines.append(f"  peak    {_si(value)}{name}")
    if "blocks" in report:
        lines.extend(_block_lines(report["blocks"]))
    wall = report["wall_time_s"]
    steps = ", ".join(f"{k} {v:.1f}" for k, v in wall.items() if k != "total")
    lines.append(f"  wall    {wall['total']:.1f} s ({steps})")
    lines.append(f"  report  {report_path}")
    return "\n".join(lines)
