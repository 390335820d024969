"""Workflows: calibrate, program and verify, MVM comparison, demo (scripts, CLI, GUI)."""
