"""Command line: ``python -m model_service <command>``; see ``--help``."""

from model_service.cli import main

raise SystemExit(main())
