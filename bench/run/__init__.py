"""Training machinery: fit under a budget, checkpoints, RNG state, phase times, logs, progress, launch."""
