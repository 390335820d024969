"""Scripted calibration runs: characterise every element, keep every reading, resume."""
