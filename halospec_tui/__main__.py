from halospec_tui.cli import main

raise SystemExit(main())
