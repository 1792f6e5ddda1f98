"""Across epochs: loading a run, overview, change decomposition, dynamics and diagnosis."""
