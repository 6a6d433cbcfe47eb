# amaranth: UnusedElaboratable=no
"""HostConfig validation and frame-overhead model, region allocation and the JSON address map,
and the bus decoder with its two peripherals in amaranth.sim against a dictionary."""

import json
import random

import pytest
from amaranth.hdl import Fragment, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In
from amaranth.sim import Simulator

from golden.host_protocol import encode_request
from hw.host.bus import BusDecoder, BusSignature, address_map_json, write_address_map
from hw.host.config import CMD_READ_BLOCK, CMD_WRITE_BLOCK, HostConfig, allocate_regions
from hw.host.peripherals import MemoryWindow, RegisterBank


def test_defaults():
    config = HostConfig()
    assert config.divisor == 25 and config.clock_hz / config.divisor == 1_000_000
    assert config.idle_timeout_cycles == 250_000
    assert [(r.name, r.base, r.size) for r in config.address_map] == [("regs", 0, 16),
                                                                     ("mem", 1024, 1024)]
    assert HostConfig.from_dict(config.to_dict()) == config
    assert json.loads(config.to_json())["params"]["baud"] == 1_000_000


@pytest.mark.parametrize("params,match", [
    ({"baud": "3000000"}, r"baud=3000000 is not reachable .* 3125000 baud \(4.2% off"),
    ({"baud": "8000000"}, r"baud=8000000 is out of range"),
    ({"idle_timeout_us": "10", "baud": "115200"}, r"idle_timeout_us=10 is shorter .* >= 174"),
    ({"max_words": "1024"}, r"max_words=1024 is out of range: expected 1..1023"),
    ({"reg_words": "0"}, r"reg_words=0"),
    ({"clock_hz": "25e6"}, r"clock_hz='25e6' is not an integer"),
])
def test_invalid_parameters_are_named(params, match):
    with pytest.raises(ValueError, match=match):
        HostConfig.from_params(params)


def test_frame_overhead_model_matches_the_encoder():
    config = HostConfig()
    for words in (1, 256, 512):
        write = encode_request(CMD_WRITE_BLOCK, 0, 0, words=[0] * words)
        read = encode_request(CMD_READ_BLOCK, 0, 0, count=words)
        assert config.request_bytes(CMD_WRITE_BLOCK, words) == len(write)
        assert config.request_bytes(CMD_READ_BLOCK, words) == len(read)
    # 1 KiB blocks: 1024 payload bytes of 1045 (write) or 1043 (read) on the line, round trip.
    assert config.frame_efficiency(CMD_WRITE_BLOCK, 256) == 1024 / 1045
    assert config.frame_efficiency(CMD_READ_BLOCK, 256) == 1024 / 1043


def test_regions_are_aligned_to_their_size():
    placed = allocate_regions([("a", 3), ("b", 100), ("c", 1), ("d", 16)])
    assert [(r.base, r.size) for r in placed] == [(0, 3), (128, 100), (228, 1), (240, 16)]
    for bad, match in [([("a", 1), ("a", 2)], "used twice"), ([("1x", 4)], "identifier"),
                       ([("a", 0)], "size=0"), ([], "at least one"), ([("a",)], "pair")]:
        with pytest.raises(ValueError, match=match):
            allocate_regions(bad)


def test_address_map_json(tmp_path):
    path = tmp_path / "map.json"
    write_address_map(path, HostConfig().regions)
    data = json.loads(path.read_text())
    assert data == address_map_json(HostConfig().regions)
    assert data["address_width"] == 11
    assert data["regions"][1] == {"name": "mem", "base": 1024, "size": 1024,
                                  "byte_base": 4096, "byte_size": 4096}


REGIONS = [("one", 1), ("regs", 5), ("mem", 40)]


class Target(wiring.Component):
    def __init__(self):
        self.decoder = BusDecoder(REGIONS)
        super().__init__({"bus": In(BusSignature(self.decoder.addr_width))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.decoder = self.decoder
        m.submodules.one = one = RegisterBank(words=1)
        m.submodules.regs = regs = RegisterBank(words=5)
        m.submodules.mem = mem = MemoryWindow(words=40)
        wiring.connect(m, wiring.flipped(self.bus), self.decoder.bus)
        for name, peripheral in (("one", one), ("regs", regs), ("mem", mem)):
            wiring.connect(m, getattr(self.decoder, name), peripheral.bus)
        return m


def test_decoder_routes_random_accesses():
    dut = Target()
    placed = dut.decoder.regions
    mapped = {r.base + n for r in placed for n in range(r.size)}
    span = 1 << dut.decoder.addr_width
    assert max(mapped) < span and len(mapped) < span   # there are unmapped addresses
    rng = random.Random(4)
    expected = {}

    async def bench(ctx):
        for _ in range(600):
            addr = rng.randrange(span)
            write = rng.random() < 0.5
            value = rng.getrandbits(32)
            ctx.set(dut.bus.addr, addr)
            ctx.set(dut.bus.we, write)
            ctx.set(dut.bus.w_data, value)
            ctx.set(dut.bus.req, 1)
            waited = 0
            while not ctx.get(dut.bus.ack):
                await ctx.tick()
                waited += 1
                assert waited < 4, f"no ack at {addr}"
            if not write:
                assert ctx.get(dut.bus.r_data) == expected.get(addr, 0), addr
            elif addr in mapped:
                expected[addr] = value
            await ctx.tick()
            ctx.set(dut.bus.req, 0)
            if rng.random() < 0.3:
                await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert len(expected) > 20


def test_bus_parts_validate():
    with pytest.raises(ValueError, match="'bus'"):
        BusDecoder([("bus", 4)])
    with pytest.raises(ValueError, match="words=0"):
        RegisterBank(words=0)
    with pytest.raises(ValueError, match="addr_width=33"):
        BusSignature(33)


def test_design_is_registered():
    from hw.host import designs  # noqa: F401  registers "host-bridge"
    from hw.registry import get_design
    design = get_design("host-bridge")
    config = design.config_cls()
    core = design.make_core(config)
    assert core.config is config and set(core.signature.members) == {"rx", "tx"}
    Fragment.get(core, None)    # it elaborates
    peak = design.peak_throughput(config, 50e6)
    assert peak["line bytes/s"] == 100_000
    assert 0.98 * 100_000 < peak["block write payload bytes/s"] < 100_000
