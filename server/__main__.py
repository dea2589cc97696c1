"""``python -m server``: run the server as ``corral serve`` does."""

from server.cli import main

raise SystemExit(main(["serve"]))
