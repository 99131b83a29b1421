"""``python -m node.cli``: the ``suanli`` command."""

import sys

from node.cli import main

sys.exit(main())
