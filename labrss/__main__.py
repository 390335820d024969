"""`python -m labrss` is the same as the `labrss` console script."""

import sys

from labrss.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
