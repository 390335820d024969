"""Analog versus digital MVM comparison metrics (pure)."""
