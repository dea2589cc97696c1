"""Registry verbs of the CLI: ``pull`` and ``push`` (through the server, as Ollama's CLI does) and
``catalog push`` (straight from the store at ``OLLAMA_MODELS``, like ``catalog apply``).

Progress looks like Ollama's: status lines, and one bar per layer (``pulling 6df22c3abc30: 45% ▕████  ▏ 98
MB``) that is redrawn in place on a terminal and printed at every quarter in a log.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from server.catalog import DEFAULT_CATALOG, load_catalog, push_catalog
from server.cli.client import Client
from server.cli.display import Progress, human_bytes, table
from server.registry.client import registry_options
from server.settings import Settings
from server.store.store import Store

BAR_WIDTH = 20


class TransferDisplay:
    """Renders a pull's or push's progress objects: a bar per layer, a line per other status."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out if out is not None else sys.stderr
        self.tty = self.out.isatty()
        self.layer = ""
        self.printed = -1

    def show(self, item: dict[str, Any]) -> None:
        status = str(item.get("status", ""))
        total = item.get("total")
        if item.get("digest") and isinstance(total, int):
            self._bar(status, int(item.get("completed") or 0), total)
        else:
            self._end_layer()
            self.out.write(status + "\n")
            self.out.flush()

    def done(self) -> None:
        self._end_layer()

    def _bar(self, status: str, completed: int, total: int) -> None:
        if status != self.layer:
            self._end_layer()
            self.layer = status
            self.printed = -1
        percent = completed * 100 // total if total else 100
        filled = percent * BAR_WIDTH // 100
        line = f"{status}: {percent:3d}% ▕{'█' * filled}{' ' * (BAR_WIDTH - filled)}▏ {human_bytes(total)}"
        if self.tty:
            self.out.write("\r" + line)
        elif percent // 25 > self.printed:
            self.printed = percent // 25
            self.out.write(line + "\n")
        self.out.flush()

    def _end_layer(self) -> None:
        if self.layer and self.tty:
            self.out.write("\n")
        self.layer = ""


def pull(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    return _transfer(client, "/api/pull", args)


def push(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    return _transfer(client, "/api/push", args)


def _transfer(client: Client, path: str, args: argparse.Namespace) -> int:
    display = TransferDisplay()
    try:
        for item in client.stream(path, {"model": args.model, "insecure": args.insecure, "stream": True}):
            display.show(item)
    finally:
        display.done()
    return 0


def catalog_push(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    """Push every catalog model to REGISTRY; prints the names and digests to pin in a ``from`` catalog."""
    catalog = load_catalog(Path(args.file))
    store = Store(settings.models, noprune=settings.noprune)
    progress = Progress()
    options = registry_options(settings, insecure=args.insecure)
    results = push_catalog(catalog, store, args.registry, options, progress.status)
    progress.done()
    table(["NAME", "DIGEST"], [[r.name, r.digest] for r in results], out)
    return 0


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, handler, text in (
        ("pull", pull, "Pull a model from a registry"),
        ("push", push, "Push a model to a registry"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("model")
        p.add_argument("--insecure", action="store_true", help="Use an insecure registry (plain http)")
        p.set_defaults(handler=handler)


def add_catalog_parsers(catalog_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = catalog_sub.add_parser(
        "push",
        help="Push every catalog model to a registry (applies the catalog first)",
        description="Push every catalog model to REGISTRY (host[:port][/namespace]), e.g. to feed an "
        "air-gapped cluster's mirror. Credentials: CORRAL_REGISTRY_USERNAME/PASSWORD or the Docker config.",
    )
    p.add_argument("registry", help="registry address, e.g. registry.internal:5000 or registry.internal:5000/team")
    p.add_argument("file", nargs="?", default=str(DEFAULT_CATALOG), help=f"catalog file (default: {DEFAULT_CATALOG})")
    p.add_argument("--insecure", action="store_true", help="Use plain http (a registry without TLS)")
    p.set_defaults(handler=catalog_push)
