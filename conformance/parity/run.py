"""``python -m conformance.parity``: build Ollama, run the suite against it and against Corral, write the matrix.

Exit codes: 0 both servers passed every required case; 1 a required case failed on either; 2 bad usage;
4 a server could not be built, started or reached, or a run aborted.
Each run's own report, JUnit and results JSON stay in ``--out`` (``ollama-<version>.*``, ``corral.*``) next to
the matrix, with the Ollama server's log.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from conformance.areas import AREAS
from conformance.harness import DEFAULT_MODEL, ServerStartError
from conformance.parity import matrix
from conformance.parity.ollama import DEFAULT_VERSION, BuildError, OllamaServer, build_ollama
from conformance.versions import OllamaVersion, VersionError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NO_SERVER = 0, 1, 2, 4
SUITE_TIMEOUT = 3600.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m conformance.parity",
        description="Run the conformance suite against a real Ollama and against Corral; write the parity matrix.",
    )
    parser.add_argument("--ollama-version", default=DEFAULT_VERSION, help=f"Ollama release (default {DEFAULT_VERSION})")
    parser.add_argument("--ollama-bin", type=Path, help="use this Ollama binary instead of building one")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"catalog model both servers serve ({DEFAULT_MODEL})")
    parser.add_argument("--out", type=Path, default=Path("parity"), help="folder for every output (default parity/)")
    parser.add_argument("--only", nargs="+", choices=sorted(AREAS), metavar="AREA", help="run only these areas")
    parser.add_argument("-k", dest="keyword", help="pytest -k expression to select cases")
    return parser


def suite_command(args: argparse.Namespace, name: str, url: str | None) -> list[str]:
    """``python -m conformance`` for one run, writing ``<out>/<name>.{md,xml,json}``."""
    out: Path = args.out
    argv = [sys.executable, "-m", "conformance", "--model", args.model, "-q"]
    argv += ["--report", str(out / f"{name}.md"), "--junit", str(out / f"{name}.xml")]
    argv += ["--results-json", str(out / f"{name}.json")]
    if url:
        argv += ["--url", url]
    else:
        argv += ["--server-log", str(out / f"{name}-server.log")]
    if args.only:
        argv += ["--only", *args.only]
    if args.keyword:
        argv += ["-k", args.keyword]
    return argv


def run_suite(args: argparse.Namespace, name: str, url: str | None) -> matrix.Run:
    """Run the suite in a child process; returns its results (an aborted run when it wrote none)."""
    say(f"running the suite against {name}" + (f" at {url}" if url else " (started by the suite)"))
    started = time.monotonic()
    done = subprocess.run(suite_command(args, name, url), timeout=SUITE_TIMEOUT, check=False)
    say(f"{name}: exit status {done.returncode} after {time.monotonic() - started:.0f} s")
    results = args.out / f"{name}.json"
    if not results.exists():
        return matrix.Run(name, "", done.returncode or EXIT_NO_SERVER)
    return matrix.Run.from_results(name, json.loads(results.read_text()))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the parity check; returns the exit code (see the module docstring)."""
    args = build_parser().parse_args(argv)
    try:
        version = OllamaVersion.parse(args.ollama_version)
    except VersionError as exc:
        print(f"parity: --ollama-version: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if version.is_latest:
        print("parity: --ollama-version needs a release number (the build is keyed by it)", file=sys.stderr)
        return EXIT_USAGE
    args.out.mkdir(parents=True, exist_ok=True)
    ollama_name = f"ollama-{version}"
    try:
        binary = args.ollama_bin or build_ollama(str(version))
        say(f"Ollama {version}: {binary}")
        with OllamaServer(binary, args.model, log_path=args.out / f"{ollama_name}-server.log") as server:
            ollama = run_suite(args, ollama_name, server.url)
    except (BuildError, ServerStartError, OSError) as exc:
        print(f"parity: {exc}", file=sys.stderr)
        return EXIT_NO_SERVER
    corral = run_suite(args, "corral", None)
    report = args.out / "parity-matrix.md"
    report.write_text(matrix.markdown(ollama, corral, model=args.model))
    junits = {name: args.out / f"{name}.xml" for name in (ollama_name, "corral")}
    matrix.junit({name: path for name, path in junits.items() if path.exists()}, args.out / "parity-matrix.xml")
    say(f"parity matrix written to {report} and {args.out / 'parity-matrix.xml'}")
    print(report.read_text())
    if ollama.aborted or corral.aborted:
        return EXIT_NO_SERVER
    return EXIT_FAILED if ollama.required_failures() or corral.required_failures() else EXIT_OK


def say(text: str) -> None:
    print(f"parity: {text}", file=sys.stderr, flush=True)
