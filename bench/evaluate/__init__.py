"""The evaluation protocol: the reference network, feature metrics, likelihood, memorization, cost.

`metrics/` holds the metric functions, `reference/` the network whose features they are computed
in, `cost/` sampling speed and FLOPs; `score.evaluate_module` (a trained model) and
`score.evaluate_samples` (a set of images) apply the protocol, and `floor` scores real images the
same way. The commands are in `bench.cli.evaluate`.
"""
