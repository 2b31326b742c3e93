"""`python -m maestro` is the `maestro` command."""

import sys

from maestro.cli import main as cli

sys.exit(cli.main())
