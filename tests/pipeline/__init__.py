"""Tests of `bench.pipeline`: a training run end to end, sweeps (joblib and submitit), and run folders
received from elsewhere."""
