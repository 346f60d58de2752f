"""Evaluation: the layer above the engine that the eval scripts share.

- ``evaluation.video``: one video through ``InferenceCore``: frames from the reader, masks
  out (a backward pass for frames before the first annotation).
- ``evaluation.run``: many videos into an output folder: work shared between processes
  (torchrun ranks, or independent runs) through atomic claims, every video published
  atomically, one summary (``eval_stats.json``, J&F, submission zip).
- ``evaluation.claims``: the claims.
- ``evaluation.validation``: J&F on held-out videos while training (sharded over the
  training job's processes, in memory, leaving the training's random generators untouched).
- ``evaluation.scoring``: any method's masks scored by the benchmarks' own scorers, per video
  and per object, with the official overall numbers and units (scores.json, comparison.json).
- ``evaluation.statistics``: video bootstrap intervals and the paired sign-flip test.
- ``evaluation.report``: the self-contained report.html.
"""
