"""Command line: ``python -m stream_tools <command>``; see ``--help``."""

from stream_tools.cli import main

raise SystemExit(main())
