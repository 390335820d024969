"""labrss driver for the ACME relay board: an example plug-in (docs/drivers.md)."""
