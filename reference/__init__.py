"""The reference's formulations, transcribed plainly: oracles for the equivalence tests and
the speed benchmark. Not used by training or evaluation.

- ``reference.inference``: the reference's DAVIS inference (whole video in memory, memory
  concatenated at each write, dense top-k affinity, boundary head computed).
- ``reference.training``: the reference's training verbs (two value-encoder calls, one
  decoder pass per object).
- ``reference.benchmark_metrics``: the official scorers of MOSE v2, LVOS, VOST and SA-V,
  on in-memory masks (the oracles of ``benchmarks.scoring``).
"""
