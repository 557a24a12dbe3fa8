"""`python -m rebac.cli`."""

import sys

from rebac.cli import main

sys.exit(main())
