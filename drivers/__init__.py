"""Instrument drivers: SMUs over PyVISA and the crossbar board over pyserial."""
