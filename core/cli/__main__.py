"""`python -m core.cli ...`: the same command as `tailscope ...`."""

import sys

from core.cli import main

sys.exit(main())
