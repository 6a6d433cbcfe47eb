"""cocotb testbench of ``SystolicArray``: every output vector equals the golden one, without
and with random valid/ready stalls, and the stall-free run takes exactly the modelled cycles.

Ports (Amaranth's flattened names): weight-stationary ``w`` (weight rows), ``a`` (activation
vectors with a swap flag), output-stationary ``i`` (k-slices with a last flag); both ``c``
(output vectors). Vectors from the caller (``tests/gemm``): ``tiles`` as ``[A, W]`` lists in the
array's tile order, ``expected`` output vectors, ``model_cycles``.
"""

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

from sim.cocotb_stream import StreamSink, StreamSource
from sim.cocotb_util import config_params, start_clock_and_reset, test_rng, test_vectors


def _pack(values, bits):
    """Little-endian concatenation of signed ``bits``-bit fields."""
    mask = (1 << bits) - 1
    word = 0
    for n, v in enumerate(values):
        word |= (v & mask) << (n * bits)
    return word


def _unpack(word, bits, count):
    out = []
    for n in range(count):
        v = (word >> (n * bits)) & ((1 << bits) - 1)
        out.append(v - (1 << bits) if v >> (bits - 1) else v)
    return out


def _streams(params, tiles):
    """``{port: [payload words]}`` for the array's input streams."""
    rows, wb, ab = params["rows"], params["weight_bits"], params["act_bits"]
    if params["dataflow"] == "ws":
        weights = [_pack(row, wb) for _, w in tiles for row in w]
        acts = [_pack(vector, ab) | (int(m == 0) << (rows * ab))
                for a, _ in tiles for m, vector in enumerate(a)]
        return {"w": weights, "a": acts}
    slices = []
    for a, w in tiles:
        for k, w_row in enumerate(w):
            last = int(k == len(w) - 1)
            slices.append(_pack([row[k] for row in a], ab)
                          | (_pack(w_row, wb) << (rows * ab))
                          | (last << (rows * ab + params["cols"] * wb)))
    return {"i": slices}


async def _run(dut, *, stall_in, stall_out, salt):
    """Drive all tiles through; return (output vectors, cycles from first input transfer to last
    output transfer inclusive)."""
    params = config_params()
    vectors = test_vectors()
    rng = test_rng(salt)
    streams = _streams(params, vectors["tiles"])
    sources = {port: StreamSource(dut, port, rng=rng, stall=stall_in) for port in streams}
    sink = StreamSink(dut, "c", rng=rng, stall=stall_out)
    await start_clock_and_reset(dut)

    seen = {"first_in": None, "last_out": None}

    async def watch():
        cycle = 0
        while True:
            await ReadOnly()
            if seen["first_in"] is None and any(s.valid.value and s.ready.value
                                                for s in sources.values()):
                seen["first_in"] = cycle
            if sink.valid.value and sink.ready.value:
                seen["last_out"] = cycle
            await RisingEdge(dut.clk)
            cycle += 1

    watcher = cocotb.start_soon(watch())
    senders = [cocotb.start_soon(sources[port].send(words)) for port, words in streams.items()]
    words = await sink.receive(len(vectors["expected"]))
    for sender in senders:
        await sender
    watcher.cancel()
    received = [_unpack(word, params["acc_bits"], params["cols"]) for word in words]
    return received, seen["last_out"] - seen["first_in"] + 1


def _compare(received, expected):
    assert len(received) == len(expected)
    for n, (got, want) in enumerate(zip(received, expected)):
        assert got == want, f"output vector {n}: got {got}, expected {want}"


@cocotb.test()
async def exact_and_cycle_count(dut):
    vectors = test_vectors()
    received, cycles = await _run(dut, stall_in=0.0, stall_out=0.0, salt="none")
    _compare(received, vectors["expected"])
    assert cycles == vectors["model_cycles"], (f"{cycles} cycles, model says "
                                               f"{vectors['model_cycles']}")


@cocotb.test()
async def exact_under_random_stalls(dut):
    vectors = test_vectors()
    for stall_in, stall_out in ((0.3, 0.4), (0.8, 0.1), (0.1, 0.8)):
        received, _ = await _run(dut, stall_in=stall_in, stall_out=stall_out,
                                 salt=f"{stall_in}/{stall_out}")
        _compare(received, vectors["expected"])
