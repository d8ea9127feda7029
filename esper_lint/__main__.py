"""``python -m esper_lint``: the same as the ``esper-lint`` command."""

from esper_lint.cli import main

raise SystemExit(main())
