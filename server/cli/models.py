"""Model verbs of the CLI: ``create``, ``list``/``ls``, ``show``, ``cp``, ``rm``. All go through the server."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from server.cli.client import Client
from server.cli.display import Progress, human_bytes, human_time, table
from server.errors import ModelfileError
from server.service.management import request_from_modelfile
from server.store.modelfile import parse_modelfile
from server.store.names import ModelName


def create(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    """Parse the Modelfile here, upload local files as blobs, then stream ``/api/create``'s statuses."""
    path = Path(args.file)
    if path.is_dir():
        path = path / "Modelfile"
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise SystemExit(f"Error: cannot read Modelfile {path}: {exc.strerror}") from exc
    try:
        modelfile = parse_modelfile(text)
    except ModelfileError as exc:
        raise SystemExit(f"Error: {path}: {exc}") from exc
    progress = Progress()

    def upload(file: Path) -> Any:
        label = f"copying file {file.name}"
        return client.upload_blob(file, lambda done, total: progress.transfer(label, done, total))

    request = request_from_modelfile(args.model, modelfile, path.resolve().parent, upload)
    payload = request.to_wire()
    payload["stream"] = True
    if getattr(args, "quantize", ""):
        payload["quantize"] = args.quantize
    progress.status("gathering model components")
    for item in client.stream("/api/create", payload):
        status = str(item.get("status", ""))
        if item.get("total"):
            progress.transfer(status, int(item.get("completed") or 0), int(item["total"]))
        else:
            progress.status(status)
    progress.done()
    return 0


def list_models(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    models = client.request("GET", "/api/tags")["models"]
    now = datetime.now().astimezone()
    rows = [
        [
            m["name"],
            m["digest"][:12],
            human_bytes(int(m["size"])),
            m.get("details", {}).get("quantization_level", ""),
            human_time(datetime.fromisoformat(m["modified_at"]), now),
        ]
        for m in models
    ]
    table(["NAME", "ID", "SIZE", "QUANTIZATION", "MODIFIED"], rows, out)
    return 0


def show(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    info = client.request("POST", "/api/show", {"model": args.model, "verbose": args.verbose})
    for flag, key in (
        ("modelfile", "modelfile"),
        ("parameters", "parameters"),
        ("template", "template"),
        ("system", "system"),
        ("license", "license"),
    ):
        if getattr(args, flag):
            out.write((info.get(key) or "") + ("\n" if info.get(key) and not info[key].endswith("\n") else ""))
            return 0
    _summary(info, out, verbose=args.verbose)
    return 0


def _summary(info: dict[str, Any], out: TextIO, *, verbose: bool) -> None:
    details = info.get("details") or {}
    model_info = info.get("model_info") or {}
    arch = model_info.get("general.architecture", details.get("family", ""))
    rows = [
        ["architecture", arch],
        ["parameters", details.get("parameter_size", "")],
        ["context length", str(model_info.get(f"{arch}.context_length", ""))],
        ["embedding length", str(model_info.get(f"{arch}.embedding_length", ""))],
        ["quantization", details.get("quantization_level", "")],
    ]
    _section("Model", [r for r in rows if r[1]], out)
    _section("Capabilities", [[c] for c in info.get("capabilities") or []], out)
    if info.get("parameters"):
        params = [line.split(None, 1) for line in info["parameters"].splitlines() if line.strip()]
        _section("Parameters", [p if len(p) == 2 else [p[0], ""] for p in params], out)
    for title, key in (("System", "system"), ("Template", "template"), ("License", "license")):
        if info.get(key):
            _text_section(title, info[key], out, limit=None if verbose else 2)
    if verbose:
        _section("Metadata", [[k, str(v)] for k, v in sorted(model_info.items())], out)


def _section(title: str, rows: list[list[str]], out: TextIO) -> None:
    if not rows:
        return
    out.write(f"  {title}\n")
    widths = [max(len(r[i]) for r in rows if len(r) > i) for i in range(max(len(r) for r in rows))]
    for row in rows:
        out.write("    " + "    ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() + "\n")
    out.write("\n")


def _text_section(title: str, text: str, out: TextIO, *, limit: int | None) -> None:
    lines = [line for line in text.strip().splitlines() if line.strip()] or [""]
    shown = lines if limit is None else lines[:limit]
    out.write(f"  {title}\n")
    for line in shown:
        out.write(f"    {line.strip()}\n")
    if limit is not None and len(lines) > limit:
        out.write("    ...\n")
    out.write("\n")


def copy(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    client.request("POST", "/api/copy", {"source": args.source, "destination": args.destination})
    out.write(f"copied '{args.source}' to '{args.destination}'\n")
    return 0


def remove(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    for model in args.models:
        client.request("DELETE", "/api/delete", {"model": model})
        out.write(f"deleted '{model}'\n")
    return 0


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("create", help="Create a model from a Modelfile")
    p.add_argument("model", type=_model_name)
    p.add_argument("-f", "--file", default="Modelfile", help="Name of the Modelfile (default: Modelfile)")
    p.add_argument("-q", "--quantize", default="", help="Quantize model to this level (e.g. q4_K_M)")
    p.set_defaults(handler=create)
    for name in ("list", "ls"):
        p = sub.add_parser(name, help="List models")
        p.set_defaults(handler=list_models)
    p = sub.add_parser("show", help="Show information for a model")
    p.add_argument("model")
    for flag in ("modelfile", "parameters", "template", "system", "license"):
        p.add_argument(f"--{flag}", action="store_true", help=f"Show the {flag} of the model")
    p.add_argument("-v", "--verbose", action="store_true", help="Show detailed model information")
    p.set_defaults(handler=show)
    p = sub.add_parser("cp", help="Copy a model")
    p.add_argument("source")
    p.add_argument("destination")
    p.set_defaults(handler=copy)
    p = sub.add_parser("rm", help="Remove a model")
    p.add_argument("models", nargs="+")
    p.set_defaults(handler=remove)


def _model_name(text: str) -> str:
    if ModelName.try_parse(text) is None:
        raise argparse.ArgumentTypeError(f"invalid model name {text!r}")
    return text
