"""The evaluation protocol: reference classifier, feature metrics, likelihood, memorization, timing.

Entry points: `bench.evaluate.score.evaluate_module` (training), `evaluate_samples` (image
sets), the `QualityCurve` callback, and the `bench-eval` / `bench-rescore` commands.
"""
