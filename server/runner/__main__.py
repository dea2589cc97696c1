"""``python -m server.runner FD``: a model runner process (started by the API process, not by hand)."""

from __future__ import annotations

import sys

from .process import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
