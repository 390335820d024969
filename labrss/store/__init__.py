"""The measurement store: SQLite database of boards, runs, raw readings, estimates and faults."""
