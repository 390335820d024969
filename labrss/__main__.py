"""`python -m labrss` is the same as the `labrss` console script."""

import sys

from labrss.cli.main import main

sys.exit(main())
