"""`Lab`: the bench operations over the station's instruments, always leaving the bench safe."""
