"""The `labrss` command line: a thin shell over the workflow functions."""
