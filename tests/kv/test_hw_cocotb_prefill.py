"""Prefills on KVCacheEngine's emitted Verilog (Verilator, cocotb) against golden KVCache under
LaCache's clean mode: prefills within the budget, compacted without and with a start-over and
(for the small config) beyond one (``T >= 2`` in the released code), each followed by decode
steps, every layer read back after each, under stalls; for a small config with every kind of
invalid command and a prefill too long for the memory, and for the paper-sized ladder."""

from sim.kv_slot_stream import golden_calls
from tests.kv.test_hw_cocotb_engine import PAPER, SMALL, _run
from tests.kv.test_hw_engine import make_session
from tests.kv.test_hw_prefill import prefill_blocks

# SMALL and PAPER (32 layers, C = 256, S0 = 4, S/O = 8/4: A = 2, R = 5, six classes, room for a
# prefill of 1,000 tokens) are built once for these and the decode tests.


def test_cocotb_small_prefills_with_errors():
    blocks = prefill_blocks(SMALL) + [SMALL.rows_per_layer + 3, 1, 1]
    assert max(T or 0 for T, _ in golden_calls(SMALL, blocks)) >= 2
    vectors = make_session(SMALL, blocks=blocks, seed=8, read_every=1, errors=True)
    assert _run(SMALL, vectors) == 2


def test_cocotb_paper_ladder_prefills():
    # Beyond one start-over the paper-sized ladder needs 1,369 tokens: that case runs on SMALL
    # here, and on the paper-sized slot tables in test_hw_prefill.py.
    blocks = [100, 1, 300, 1, 1, 450, 1, 1]
    kinds = [T for T, _ in golden_calls(PAPER, blocks)]
    assert (kinds[0], kinds[2], kinds[5]) == (None, 0, 1)
    vectors = make_session(PAPER, blocks=blocks, seed=2, read_every=3)
    assert _run(PAPER, vectors) == 2
