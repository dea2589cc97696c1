"""The ``corral`` command: Ollama's verbs, talking to the server at ``OLLAMA_HOST``.

``serve`` runs the server; ``catalog`` works directly on the store at ``OLLAMA_MODELS`` (no server needed);
every other verb is an HTTP client of a running server, like Ollama's CLI.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from server import __version__
from server.catalog import DEFAULT_CATALOG, CatalogError, apply_catalog, load_catalog
from server.cli import models, perf, registry, run
from server.cli.client import Client, ServerError, ServerUnavailable
from server.cli.display import Progress, table
from server.errors import ApiError, SettingsError
from server.registry.client import registry_options
from server.settings import Settings
from server.store.store import Store


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    """Run one CLI command; returns the process exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["conformance"]:
        # The conformance suite is a separate, black-box package with its own options.
        from conformance.cli import main as conformance_main

        return conformance_main(arguments[1:])
    if arguments[:1] == ["infra"]:
        from server.cli.infra import main as infra_main

        return infra_main(arguments[1:], out)
    parser = _parser()
    args = parser.parse_args(arguments)
    if args.handler is None:
        parser.print_help(out)
        return 0
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    # Client commands print only what the user asked for; the server and catalog log what they do.
    local = args.handler in (serve, catalog_validate, catalog_apply, registry.catalog_push)
    logging.basicConfig(
        level=logging.DEBUG if settings.debug else logging.INFO if local else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if local:
        try:
            return int(args.handler(settings, args, out))
        except CatalogError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            return 1
    client = Client(settings.host.url, api_key=settings.api_key)
    try:
        return int(args.handler(client, args, out))
    except ServerUnavailable as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except (ServerError, ApiError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`corral show x | head`): not an error of ours.
        sys.stderr.close()
        return 0
    finally:
        client.close()


def serve(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    """Run the HTTP server in the foreground on ``OLLAMA_HOST`` (drains on SIGTERM: see server.serving)."""
    from server.serving import serve as run_server

    return run_server(settings)


def catalog_validate(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    catalog = load_catalog(Path(args.file))
    out.write(f"{catalog.path}: {len(catalog.entries)} model(s), valid\n")
    return 0


def catalog_apply(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    """Create or update the catalog's models in ``OLLAMA_MODELS`` directly, without a server."""
    catalog = load_catalog(Path(args.file))
    progress = Progress()
    store = Store(settings.models, noprune=settings.noprune)
    results = apply_catalog(catalog, store, progress.status, registry_options(settings, insecure=False))
    progress.done()
    table(["NAME", "DIGEST", "RESULT"], [[r.name, r.digest, r.action] for r in results], out)
    if all(r.action == "unchanged" for r in results):
        out.write("store already matches the catalog; nothing changed\n")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="corral", description="Ollama-compatible LLM serving as infrastructure")
    parser.add_argument("-v", "--version", action="version", version=f"corral version is {__version__}")
    parser.set_defaults(handler=None)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    settings_help = "\n".join(
        f"  {env:<26} {meaning} (default: {default})" for env, default, meaning in Settings.describe()
    )
    p = sub.add_parser(
        "serve",
        help="Start the server",
        description=f"Start the server.\n\nEnvironment variables:\n{settings_help}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(handler=serve)
    models.add_parsers(sub)
    run.add_parsers(sub)
    registry.add_parsers(sub)
    perf.add_parsers(sub)
    sub.add_parser(
        "conformance",
        help="Check Ollama API parity of a server (corral conformance --help)",
        add_help=False,
    )
    p = sub.add_parser("catalog", help="Validate or apply a model catalog (works on OLLAMA_MODELS directly)")
    catalog_sub = p.add_subparsers(title="catalog commands", metavar="COMMAND", required=True)
    for name, handler, text in (
        ("validate", catalog_validate, "Check a catalog file against its schema"),
        ("apply", catalog_apply, "Create or update the catalog's models in the store"),
    ):
        c = catalog_sub.add_parser(name, help=text)
        c.add_argument(
            "file", nargs="?", default=str(DEFAULT_CATALOG), help=f"catalog file (default: {DEFAULT_CATALOG})"
        )
        c.set_defaults(handler=handler)
    registry.add_catalog_parsers(catalog_sub)
    return parser
