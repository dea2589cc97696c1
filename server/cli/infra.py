"""``corral infra``: deployment checks that need no cluster.

``corral infra check [STACK ...]`` renders each stack (all of ``stacks/`` by default) through the real Pulumi
engine, validates every manifest against the supported Kubernetes versions, runs the policies, prints one table
row per stack and exits non-zero on any violation. It needs the Go-built tools (``make tools``) and the
``infra`` extra.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO


def main(argv: Sequence[str], out: TextIO = sys.stdout) -> int:
    """Run one ``corral infra`` command; returns the exit code (0 ok, 1 violations or failures, 2 usage)."""
    parser = argparse.ArgumentParser(prog="corral infra", description="Check the Kubernetes deployment.")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="render stacks through the Pulumi engine, validate, run policies")
    check.add_argument("stacks", nargs="*", metavar="STACK", help="stack names (default: every stacks/Pulumi.*.yaml)")
    check.add_argument("--stacks-dir", type=Path, default=None, help="folder of Pulumi.<stack>.yaml files")
    check.add_argument("--verbose", action="store_true", help="print every violation and schema finding in full")
    args = parser.parse_args(list(argv))

    try:
        from infra.check import check_stacks, format_report
        from infra.toolchain.tools import ToolMissing
    except ImportError as exc:
        print(f"Error: {exc}. Install the deployment extra: pip install -e '.[infra]' (or make setup)", file=sys.stderr)
        return 2
    try:
        reports = check_stacks(args.stacks or None, args.stacks_dir, progress=lambda line: print(line, file=sys.stderr))
    except ToolMissing as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    out.write(format_report(reports, verbose=args.verbose))
    return 0 if all(report.passed for report in reports) else 1
