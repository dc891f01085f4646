"""What a model costs to sample: speed, latency, FLOPs and peak memory."""
