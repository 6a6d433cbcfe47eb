"""Host link throughput: payload bytes per second against the line rate, for block transfers.

Two figures per transfer: the analytic one, from the frame format (header, CRCs and response
bytes over payload bytes, stop-and-wait), and the one measured in amaranth.sim on ``HostBridge``
at the configured clock and baud rate: a host drives ``rx`` bit by bit with no gaps, and the time
runs from the request's first start bit to the end of the response's last stop bit, so it
includes the bridge's turnaround (CRC check, bus accesses) but no host or USB latency. The
measurement also checks that the response characters follow each other with no idle time.

Run: ``python -m bench.host`` (default config: 25 MHz ULX3S clock, 1 Mbaud, 512-word blocks)
or with ``--param key=value`` to change the HostConfig, and ``--sizes 256,1024`` (bytes). The
simulation runs at about 10k cycles/s: the default (1 and 2 KiB, each way) takes ~2.5 minutes.
"""

import argparse
import time

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from golden.host_protocol import decode_responses, encode_request
from hw.host.config import BITS_PER_CHAR, CMD_READ_BLOCK, CMD_WRITE_BLOCK, STATUS_OK, HostConfig
from hw.host.bridge import HostBridge
from sim.tb.host_line import char_levels


#: Payload efficiency the frame format must reach for blocks of at least 1 KiB.
TARGET_EFFICIENCY = 0.90


class _Timed(wiring.Component):
    """HostBridge with a free-running cycle counter, so the host can stamp events cheaply."""

    def __init__(self, config):
        self.bridge = HostBridge(config=config)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "cycle": Out(32)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.bridge = self.bridge
        m.d.comb += [self.bridge.rx.eq(self.rx), self.tx.eq(self.bridge.tx)]
        m.d.sync += self.cycle.eq(self.cycle + 1)
        return m


def measure(config, cmd, words):
    """Clock cycles from the first request start bit to the end of the response's last stop bit,
    for one ``cmd`` of ``words`` words on a fresh bridge (a read returns zeros)."""
    d = config.divisor
    data = [(0x9E3779B9 * (n + 1)) & 0xFFFFFFFF for n in range(words)]
    base = config.address_map[1].base
    frame = (encode_request(CMD_WRITE_BLOCK, 1, base, words=data) if cmd == CMD_WRITE_BLOCK
             else encode_request(CMD_READ_BLOCK, 1, base, count=words))
    dut = _Timed(config)
    starts = []         # cycle of each response character's start bit
    received = bytearray()
    first = {}

    async def host(ctx):
        first["cycle"] = ctx.get(dut.cycle)
        for byte in frame:
            for level in char_levels(byte):
                ctx.set(dut.rx, level)
                await ctx.tick().repeat(d)
        for _ in range(config.response_bytes(cmd, words)):
            await ctx.tick().until(dut.tx == 0)
            starts.append(ctx.get(dut.cycle))
            await ctx.tick().repeat(d // 2)
            bits = []
            for _ in range(9):
                await ctx.tick().repeat(d)
                bits.append(ctx.get(dut.tx))
            assert bits[8] == 1, "low stop bit"
            received.append(sum(b << n for n, b in enumerate(bits[:8])))

    sim = Simulator(dut)
    sim.add_clock(1 / config.clock_hz)
    sim.add_testbench(host)
    sim.run()
    response, = decode_responses(received)
    assert response.status == STATUS_OK, response
    assert list(response.words) == ([0] * words if cmd == CMD_READ_BLOCK else [])
    assert all(b - a == BITS_PER_CHAR * d for a, b in zip(starts, starts[1:])), \
        "idle time between response characters"
    return starts[-1] + BITS_PER_CHAR * d - first["cycle"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="HostConfig parameter")
    parser.add_argument("--sizes", default="1024,2048",
                        help="block sizes in bytes, comma-separated (multiples of 4)")
    args = parser.parse_args(argv)
    config = HostConfig.from_params(dict(p.split("=", 1) for p in args.param))
    sizes = [int(s) for s in args.sizes.split(",")]
    line = config.line_bytes_per_s()
    print(f"clock {config.clock_hz / 1e6:g} MHz, {config.clock_hz / config.divisor:.0f} baud "
          f"(divisor {config.divisor}), line {line / 1e3:.1f} kB/s per direction, "
          f"max block {config.max_words * 4} B")
    print(f"{'transfer':>14} {'req B':>6} {'resp B':>6} {'analytic':>9} {'measured':>9} "
          f"{'payload kB/s':>12} {'sim s':>6}")
    worst = None
    for size in sizes:
        words = size // 4
        if not 1 <= words <= config.max_words or size % 4:
            raise SystemExit(f"--sizes: {size} is not a multiple of 4 in 4..{config.max_words * 4}")
        for cmd, name in ((CMD_WRITE_BLOCK, "write"), (CMD_READ_BLOCK, "read")):
            started = time.monotonic()
            cycles = measure(config, cmd, words)
            # Payload bytes over the character times the transfer occupied.
            measured = size / (cycles / (config.divisor * BITS_PER_CHAR))
            analytic = config.frame_efficiency(cmd, words)
            if size >= 1024:
                worst = measured if worst is None else min(worst, measured)
            print(f"{name + ' ' + str(size) + ' B':>14} {config.request_bytes(cmd, words):>6} "
                  f"{config.response_bytes(cmd, words):>6} {analytic:>9.2%} {measured:>9.2%} "
                  f"{measured * line / 1e3:>12.1f} {time.monotonic() - started:>6.1f}")
    if any(size >= 1024 for size in sizes):
        verdict = "meets" if worst >= TARGET_EFFICIENCY else "MISSES"
        print(f"worst efficiency for blocks >= 1 KiB: {worst:.2%} (measured, round trip), "
              f"{verdict} the {TARGET_EFFICIENCY:.0%} target")


if __name__ == "__main__":
    main()
