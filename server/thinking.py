"""Separating a thinking model's reasoning from its answer.

Thinking models write their reasoning between an opening and a closing tag (``<think>`` ... ``</think>``)
before the answer. With thinking on, Corral routes that text to ``thinking`` and the rest to
``response``/``content``, as Ollama does; with thinking off the text passes through unchanged. The parser is
incremental: a tag split across chunks is held back until it is complete.
"""

from __future__ import annotations

from typing import NamedTuple

OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"


class ThinkingStep(NamedTuple):
    thinking: str
    content: str


class ThinkingParser:
    """Feed generated text; get ``(thinking, content)`` to emit. Leading whitespace before the opening tag is
    dropped; output that does not start with the tag is all content."""

    def __init__(self, open_tag: str = OPEN_TAG, close_tag: str = CLOSE_TAG) -> None:
        self.open_tag = open_tag
        self.close_tag = close_tag
        self._state = "start"  # start -> thinking -> content
        self._held = ""
        # Whitespace right after a tag belongs to neither part; it may arrive in later chunks.
        self._trim_thinking = False
        self._trim_content = False

    def feed(self, text: str) -> ThinkingStep:
        self._held += text
        thinking = content = ""
        if self._state == "start":
            stripped = self._held.lstrip()
            if stripped.startswith(self.open_tag):
                self._state = "thinking"
                self._held = stripped[len(self.open_tag) :]
                self._trim_thinking = True
            elif self.open_tag.startswith(stripped):
                return ThinkingStep("", "")  # could still be the opening tag
            else:
                self._state = "content"
        if self._state == "thinking":
            if self._trim_thinking:
                self._held = self._held.lstrip("\n")
                self._trim_thinking = not self._held
            end = self._held.find(self.close_tag)
            if end >= 0:
                thinking = self._held[:end]
                self._held = self._held[end + len(self.close_tag) :]
                self._state = "content"
                self._trim_content = True
            else:
                keep = _partial_suffix(self._held, self.close_tag)
                thinking, self._held = self._held[: len(self._held) - keep], self._held[len(self._held) - keep :]
                return ThinkingStep(thinking, "")
        if self._state == "content":
            if self._trim_content:
                self._held = self._held.lstrip()
                self._trim_content = not self._held
            content, self._held = self._held, ""
        return ThinkingStep(thinking, content)

    def flush(self) -> ThinkingStep:
        held, self._held = self._held, ""
        if self._state == "thinking":
            return ThinkingStep(held, "")
        return ThinkingStep("", held)


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest end of ``text`` that is a beginning of ``tag``."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0
