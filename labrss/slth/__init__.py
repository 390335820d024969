"""Strong lottery ticket pruning of random networks by subset sum (pure)."""
