"""``python -m conformance``: the same as ``corral conformance``."""

from conformance.cli import main

raise SystemExit(main())
