"""``python -m overseer`` is the ``overseer`` command."""

import sys

from overseer.cli.main import main

sys.exit(main())
