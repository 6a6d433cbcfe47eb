"""Registers the tensor engines as buildable designs: the bare arrays (``systolic-array``,
``dot-product``: ``GemmConfig.array`` does not apply to them) and the tiled ``tensor-engine``
(on the array ``GemmConfig.array`` and ``dataflow`` select)."""

from ..registry import Design, register
from .config import GemmConfig
from .dot_product import DotProductEngine
from .engine import TensorEngine
from .systolic import SystolicArray


def _peak_throughput(config, fmax_hz):
    macs = config.peak_macs_per_cycle * fmax_hz
    # One multiply-accumulate is two operations, as GOPS figures are usually quoted.
    return {"MAC/s": macs, "GOPS": 2 * macs / 1e9}


#: (design name, summary, core class): every one is built from a :class:`GemmConfig`.
_DESIGNS = (
    ("systolic-array", "rows x cols systolic MAC array, weight- or output-stationary, "
                       "int8/int4/int2 weights", SystolicArray),
    ("dot-product", "rows x cols multiplier-adder-tree dot-product engine, weight-stationary, "
                    "int8/int4/int2 weights", DotProductEngine),
    ("tensor-engine", "tiled GEMM engine: any M, K, N on a ws/os systolic array or the "
                      "dot-product engine, operand and accumulator buffers, per-channel "
                      "requantization to int8", TensorEngine),
)

for _name, _summary, _core in _DESIGNS:
    register(Design(name=_name, summary=_summary, config_cls=GemmConfig,
                    make_core=lambda config, core=_core: core(config=config),
                    peak_throughput=_peak_throughput))
