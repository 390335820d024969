"""labrss: precise conductances from imprecise elements, on a crossbar board or its simulator.

The application layer: the RSS solver, weight mapping, SLTH, MVM metrics (pure algorithms),
the station and `Lab` (bench operations over the drivers), the measurement store, the
workflows that scripts, the CLI and the GUI all call, and the two shells themselves.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("labrss")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
