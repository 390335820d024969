"""The station file: instruments, addresses and safety limits (simulator by default)."""
