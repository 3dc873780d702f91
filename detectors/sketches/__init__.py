"""Mergeable profiles (KLL sketches, category counts, moments) and the drift tests that run on them."""
