"""gmf_repro: a reproduction of GMF (Generalized Multimodal Fusion via Poisson-Nernst-Planck Equation).

cuBLAS reads ``CUBLAS_WORKSPACE_CONFIG`` once, when CUDA starts; deterministic matmuls on a GPU need
it set before then. Importing the package sets it (unless the user already did), so every entry
point (``python -m gmf_repro``, the benchmark, the tests, a notebook) has it before any CUDA call.
"""
import os

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
