"""Console scripts: each a thin function over the pipeline and the report."""
