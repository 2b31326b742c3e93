"""`python -m maestro` is the `maestro` command."""

import sys

from maestro import cli

sys.exit(cli.main())
