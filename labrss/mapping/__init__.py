"""Weights to conductance targets: scaling, differential column pairs, tiling (pure)."""
