"""``corral run``, ``ps`` and ``stop``: talking to a model from the terminal, and managing loaded models.

``run MODEL PROMPT`` (or a prompt on stdin) answers once; ``run MODEL`` alone opens an interactive chat
with Ollama's commands (``/bye``, ``/clear``, ``/set parameter``, ``/show``, ``/?``) and ``\"\"\"`` for
multi-line input. Output streams as it is generated.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from server.cli.client import Client
from server.cli.display import human_bytes, table
from server.errors import InvalidOption
from server.options import parse_parameter

HELP = """Available Commands:
  /set parameter NAME VALUE   Set a parameter (e.g. /set parameter temperature 0.2)
  /show info|parameters|system|template|modelfile|license   Show model information
  /clear          Clear the session context
  /bye            Exit
  /?, /help       Help for a command

Use \"\"\" to begin and end a multi-line message.
"""


@dataclass
class Session:
    """One conversation: the model, its history and the options set with ``/set parameter``."""

    model: str
    format: str | None = None
    keep_alive: str | None = None
    verbose: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)

    def request(self, content: str) -> dict[str, Any]:
        self.messages.append({"role": "user", "content": content})
        body: dict[str, Any] = {"model": self.model, "messages": self.messages, "stream": True}
        if self.options:
            body["options"] = self.options
        if self.format:
            body["format"] = self.format
        if self.keep_alive is not None:
            body["keep_alive"] = self.keep_alive
        return body


def run(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    session = Session(model=args.model, format=args.format, keep_alive=args.keepalive, verbose=args.verbose)
    prompt = " ".join(args.prompt)
    stdin: TextIO = args.stdin if getattr(args, "stdin", None) is not None else sys.stdin
    if not stdin.isatty():
        piped = stdin.read()
        prompt = f"{piped}\n\n{prompt}" if prompt and piped else prompt or piped
    # Load first, as Ollama's CLI does: an unknown model fails before anything is typed.
    load: dict[str, Any] = {"model": args.model, "messages": []}
    if args.keepalive is not None:
        load["keep_alive"] = args.keepalive
    client.request("POST", "/api/chat", load)
    if prompt:
        answer(client, session, prompt, out)
        return 0
    return interact(client, session, stdin, out)


def answer(client: Client, session: Session, content: str, out: TextIO) -> None:
    """Send one user message, stream the reply to ``out`` and keep it in the history."""
    reply: list[str] = []
    final: dict[str, Any] = {}
    for chunk in client.stream("/api/chat", session.request(content)):
        text = chunk.get("message", {}).get("content", "")
        if text:
            out.write(text)
            out.flush()
            reply.append(text)
        if chunk.get("done"):
            final = chunk
    out.write("\n\n" if reply else "\n")
    session.messages.append({"role": "assistant", "content": "".join(reply)})
    if session.verbose:
        sys.stderr.write(timings(final))


def interact(client: Client, session: Session, stdin: TextIO, out: TextIO) -> int:
    """The interactive loop; returns at ``/bye`` or end of input."""
    while True:
        line = _read(stdin, out, ">>> ")
        if line is None:
            return 0
        if line.startswith('"""'):
            line = _read_multiline(stdin, out, line[3:])
            if line is None:
                return 0
        text = line.strip()
        if not text:
            continue
        if text.startswith("/"):
            if _command(client, session, text, out):
                return 0
            continue
        answer(client, session, line, out)


def _read(stdin: TextIO, out: TextIO, prompt: str) -> str | None:
    out.write(prompt)
    out.flush()
    line = stdin.readline()
    if not line:
        out.write("\n")
        return None
    return line.rstrip("\n")


def _read_multiline(stdin: TextIO, out: TextIO, first: str) -> str | None:
    lines = [first] if first else []
    while True:
        line = _read(stdin, out, "... ")
        if line is None:
            return None
        if line.rstrip().endswith('"""'):
            lines.append(line.rstrip()[:-3])
            return "\n".join(lines)
        lines.append(line)


def _command(client: Client, session: Session, text: str, out: TextIO) -> bool:
    """Run a slash command; True means leave."""
    words = text.split()
    verb = words[0]
    if verb in ("/bye", "/exit"):
        return True
    if verb in ("/?", "/help"):
        out.write(HELP)
    elif verb == "/clear":
        session.messages.clear()
        out.write("Cleared session context\n")
    elif verb == "/set" and len(words) >= 4 and words[1] == "parameter":
        name, value = words[2], " ".join(words[3:])
        try:
            parsed = parse_parameter(name, value)
        except InvalidOption as exc:
            out.write(f"Couldn't set parameter: {exc}\n")
            return False
        if isinstance(parsed, list):
            parsed = session.options.get(name, []) + parsed
        session.options[name] = parsed
        out.write(f"Set parameter '{name}' to '{value}'\n")
    elif verb == "/show" and len(words) == 2:
        _show(client, session, words[1], out)
    else:
        out.write(f"Unknown command '{text}'. Type /? for help\n")
    return False


def _show(client: Client, session: Session, what: str, out: TextIO) -> None:
    info = client.request("POST", "/api/show", {"model": session.model})
    if what == "info":
        details = info.get("details") or {}
        rows = [
            ["architecture", str((info.get("model_info") or {}).get("general.architecture", ""))],
            ["parameters", str(details.get("parameter_size", ""))],
            ["quantization", str(details.get("quantization_level", ""))],
        ]
        table(["Model", ""], rows, out)
    elif what in ("parameters", "system", "template", "modelfile", "license"):
        text = info.get(what) or f"No {what} was specified for this model."
        out.write(text.rstrip("\n") + "\n")
        if what == "parameters" and session.options:
            out.write("User defined parameters:\n")
            for name, value in session.options.items():
                out.write(f"{name:<30} {value}\n")
    else:
        out.write("Usage: /show info|parameters|system|template|modelfile|license\n")


def timings(final: dict[str, Any]) -> str:
    """The ``--verbose`` block Ollama prints after a reply."""

    def seconds(key: str) -> float:
        return float(final.get(key, 0)) / 1e9

    def rate(count: str, duration: str) -> str:
        return f"{final.get(count, 0) / seconds(duration):.2f} tokens/s" if seconds(duration) else "n/a"

    rows = [
        ("total duration", f"{seconds('total_duration'):.6f}s"),
        ("load duration", f"{seconds('load_duration'):.6f}s"),
        ("prompt eval count", f"{final.get('prompt_eval_count', 0)} token(s)"),
        ("prompt eval duration", f"{seconds('prompt_eval_duration'):.6f}s"),
        ("prompt eval rate", rate("prompt_eval_count", "prompt_eval_duration")),
        ("eval count", f"{final.get('eval_count', 0)} token(s)"),
        ("eval duration", f"{seconds('eval_duration'):.6f}s"),
        ("eval rate", rate("eval_count", "eval_duration")),
    ]
    return "".join(f"{name + ':':<22}{value}\n" for name, value in rows)


def ps(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    models = client.request("GET", "/api/ps")["models"]
    now = datetime.now().astimezone()
    rows = [
        [
            m["name"],
            m["digest"][:12],
            human_bytes(int(m["size"])),
            _processor(int(m["size"]), int(m.get("size_vram", 0))),
            str(m.get("context_length", "")),
            _until(datetime.fromisoformat(m["expires_at"]), now),
        ]
        for m in models
    ]
    table(["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"], rows, out)
    return 0


def stop(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    client.request("POST", "/api/generate", {"model": args.model, "keep_alive": 0})
    return 0


def _processor(size: int, vram: int) -> str:
    if vram <= 0:
        return "100% CPU"
    if vram >= size:
        return "100% GPU"
    cpu = round(100 * (size - vram) / size)
    return f"{cpu}%/{100 - cpu}% CPU/GPU"


def _until(expires: datetime, now: datetime) -> str:
    seconds = (expires - now).total_seconds()
    if seconds > 100 * 365 * 86400:
        return "Forever"
    if seconds <= 0:
        return "Stopping..."
    if seconds < 60:
        return "Less than a minute from now"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} minute{'s' if minutes != 1 else ''} from now"
    hours = int(minutes // 60)
    return f"{hours} hour{'s' if hours != 1 else ''} from now"


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="Run a model")
    p.add_argument("model")
    p.add_argument("prompt", nargs="*", help="Answer this prompt and exit (default: interactive chat)")
    p.add_argument("--format", help='Response format (e.g. "json")')
    p.add_argument("--keepalive", help="How long to keep the model loaded (e.g. 5m)")
    p.add_argument("--verbose", action="store_true", help="Show timings and tokens/s")
    p.set_defaults(handler=run)
    p = sub.add_parser("ps", help="List running models")
    p.set_defaults(handler=ps)
    p = sub.add_parser("stop", help="Stop a running model")
    p.add_argument("model")
    p.set_defaults(handler=stop)
