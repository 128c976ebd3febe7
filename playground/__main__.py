"""``python -m playground``: the same as the ``playground`` command."""

from playground.cli.main import main

raise SystemExit(main())
