"""The Random Subset Sum solver: best subsets of measured elements for targets (pure)."""
