"""``python -m playground``: the same as the ``playground`` command."""

from playground.cli import main

raise SystemExit(main())
