"""``corral conformance``: run the parity suite against a server and gate on its required cases.

Exit codes: 0 every required case passed; 1 a required case failed (or errored); 2 bad usage;
3 ``--image`` cannot run here (no testcontainers or no Docker engine); 4 the server could not be started or
reached, or the suite itself could not run (collection error, no cases selected).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import pytest

from conformance.areas import AREAS
from conformance.harness import DEFAULT_MODEL, ContainerServer, ContainerUnavailable, ServerStartError
from conformance.report import ParityReport
from conformance.versions import OllamaVersion, VersionError

SUITE_DIR = Path(__file__).resolve().parent
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NO_CONTAINER, EXIT_NO_SERVER = 0, 1, 2, 3, 4


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="corral conformance",
        description="Check a server's Ollama API parity; exit non-zero when a required case fails.",
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--url", help="server to check (default: start a Corral server with the default model)")
    target.add_argument("--image", help="container image to start with testcontainers and check (e.g. ollama/ollama)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"model under test (default {DEFAULT_MODEL})")
    parser.add_argument(
        "--embed-model",
        help="model for the embedding cases (default: all-minilm:22m when the server has it, else --model)",
    )
    parser.add_argument("--report", type=Path, help="write the Markdown parity report here")
    parser.add_argument("--junit", type=Path, help="write JUnit XML here")
    parser.add_argument("--results-json", type=Path, help="write every case's outcome as JSON here")
    parser.add_argument(
        "--ollama-version",
        metavar="X.Y.Z",
        help="judge the target as this Ollama release, or 'latest' (default: the target's /api/version)",
    )
    parser.add_argument("--only", nargs="+", choices=sorted(AREAS), metavar="AREA", help="run only these areas")
    parser.add_argument("--server-log", type=Path, help="log file of the server this command starts")
    parser.add_argument(
        "--api-key",
        help="send this key as 'Authorization: Bearer' (default: OLLAMA_API_KEY); a Corral server this command "
        "starts then requires it",
    )
    parser.add_argument("-k", dest="keyword", help="pytest -k expression to select cases")
    parser.add_argument("-q", "--quiet", action="store_true", help="less pytest output")
    return parser


def pytest_args(args: argparse.Namespace, url: str | None) -> list[str]:
    """The pytest command line for one run of the suite against ``url`` (None: the suite starts Corral)."""
    argv = [
        str(SUITE_DIR),
        "-c",
        str(SUITE_DIR / "pytest.ini"),
        "--rootdir",
        str(SUITE_DIR),
        "--ignore",
        str(SUITE_DIR / "tests"),
        "--model",
        args.model,
    ]
    if url:
        argv += ["--url", url]
    if args.server_log:
        argv += ["--server-log", str(args.server_log)]
    if args.ollama_version:
        argv += ["--ollama-version", args.ollama_version]
    if args.api_key:
        argv += ["--api-key", args.api_key]
    if args.embed_model:
        argv += ["--embed-model", args.embed_model]
    if args.junit:
        argv += ["--junitxml", str(args.junit)]
    for area in args.only or []:
        argv += ["--only", area]
    if args.keyword:
        argv += ["-k", args.keyword]
    if args.quiet:
        argv.append("-q")
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite; returns the exit code (see the module docstring)."""
    args = build_parser().parse_args(argv)
    if args.ollama_version:
        try:
            OllamaVersion.parse(args.ollama_version)
        except VersionError as exc:
            print(f"conformance: --ollama-version: {exc}", file=sys.stderr)
            return EXIT_USAGE
    with ExitStack() as stack:
        url: str | None = args.url.rstrip("/") if args.url else None
        if args.image:
            try:
                url = stack.enter_context(ContainerServer(args.image, args.model)).url
            except ContainerUnavailable as exc:
                print(f"conformance: {exc}", file=sys.stderr)
                return EXIT_NO_CONTAINER
            except ServerStartError as exc:
                print(f"conformance: the container did not serve: {exc}", file=sys.stderr)
                return EXIT_NO_SERVER
        # Without --url/--image the suite's conftest starts Corral (harness.ServerProcess) and watches it.
        target = args.image or url or "a Corral server started by the suite"
        report = ParityReport(args.report, target=target, model=args.model, results_path=args.results_json)
        code = pytest.main(pytest_args(args, url), plugins=[report])
    if args.report:
        print(f"conformance: parity report written to {args.report}")
    return exit_code(int(code), report)


def exit_code(pytest_code: int, report: ParityReport) -> int:
    """Map pytest's exit code and the outcomes to the gate's exit code."""
    if pytest_code == pytest.ExitCode.USAGE_ERROR:
        return EXIT_USAGE
    if pytest_code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        return EXIT_NO_SERVER
    return EXIT_FAILED if report.required_failures else EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
