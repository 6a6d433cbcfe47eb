"""Tensor (GEMM) engines: systolic arrays in both dataflows, with DSP or LUT multipliers."""
