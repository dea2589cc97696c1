"""``python -m conformance.parity``: see ``conformance.parity.run``."""

from conformance.parity.run import main

raise SystemExit(main())
