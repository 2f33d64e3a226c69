"""Technician tools: the self-test checks and the printable scanner calibration card."""
