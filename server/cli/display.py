"""Terminal output of the CLI: Ollama-style tables, human sizes and times, and progress lines."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import TextIO


def table(headers: list[str], rows: list[list[str]], out: TextIO) -> None:
    """Columns padded like Ollama's tabwriter output (three spaces between columns)."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    for row in [headers, *rows]:
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)]
        out.write("    ".join(cells).rstrip() + "\n")


def human_bytes(size: int) -> str:
    """Decimal units as Ollama prints them: ``98 MB``, ``1.9 GB``, ``512 B``."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if size >= scale:
            value = size / scale
            if value >= 10 or value == int(value):
                return f"{int(value)} {unit}"
            return f"{value:.1f} {unit}"
    return f"{size} B"


def human_time(moment: datetime, now: datetime) -> str:
    """``About a minute ago``, ``3 hours ago``, ``2 days ago`` as Ollama's ``list`` shows them."""
    seconds = (now - moment).total_seconds()
    if seconds < 1:
        return "Less than a second ago"
    if seconds < 60:
        return f"{int(seconds)} second{'s' if int(seconds) != 1 else ''} ago"
    for unit, size in (("year", 31536000), ("month", 2592000), ("week", 604800), ("day", 86400), ("hour", 3600)):
        if seconds >= size:
            count = int(seconds // size)
            if count == 1:
                return f"About {'an' if unit == 'hour' else 'a'} {unit} ago"
            return f"{count} {unit}s ago"
    minutes = int(seconds // 60)
    return "About a minute ago" if minutes == 1 else f"{minutes} minutes ago"


class Progress:
    """Status lines for long operations. On a terminal a line is rewritten in place; otherwise (CI logs)
    each new status is printed once."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out if out is not None else sys.stderr
        self.tty = self.out.isatty()
        self.current = ""

    def status(self, text: str) -> None:
        if text == self.current:
            return
        self._end_line()
        self.current = text
        self.out.write(text if self.tty else text + "\n")
        self.out.flush()

    def transfer(self, label: str, done: int, total: int) -> None:
        percent = int(done * 100 / total) if total else 100
        line = f"{label} {percent:3d}% {human_bytes(done)}/{human_bytes(total)}"
        if self.tty:
            self.out.write("\r" + line)
            self.out.flush()
            self.current = line
        elif done >= total or (percent % 25 == 0 and line != self.current):
            self.status(line)

    def done(self) -> None:
        self._end_line()
        self.current = ""

    def _end_line(self) -> None:
        if self.tty and self.current:
            self.out.write("\n")
