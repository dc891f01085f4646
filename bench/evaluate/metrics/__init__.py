"""Metric functions on features and likelihoods (Fréchet distance, KID, PRDC, bits/dim, memorization)."""
