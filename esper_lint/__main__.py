from esper_lint.cli import main

raise SystemExit(main())
