"""Turns a stream of token bytes into releasable text: whole UTF-8 characters, stop sequences cut out.

Pure Python and independent of llama.cpp, so it is tested on its own.
"""

from __future__ import annotations

import codecs


class TextStream:
    """Assembles output text from token pieces and watches for stop sequences.

    ``push`` returns the text that can be released now and whether a stop sequence was found. Text that could be
    the beginning of a stop sequence is held back until it is clear it is not; when a stop sequence appears (even
    spread over several tokens), the text before it is released and the stop text itself never is. Several stop
    sequences may be given; the earliest match in the text wins.
    """

    def __init__(self, stops: list[str]) -> None:
        self._stops = [s for s in stops if s]
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._held = ""

    @property
    def held(self) -> str:
        """Decoded text not released yet."""
        return self._held

    def push(self, piece: bytes) -> tuple[str, bool]:
        """Add one token's bytes. Returns (text to release now, stop sequence found)."""
        text = self._held + self._decoder.decode(piece)
        if not self._stops:
            self._held = ""
            return text, False
        cut = -1
        for stop in self._stops:
            at = text.find(stop)
            if at != -1 and (cut == -1 or at < cut):
                cut = at
        if cut != -1:
            self._held = ""
            return text[:cut], True
        keep = self._partial_stop_length(text)
        self._held = text[len(text) - keep :]
        return text[: len(text) - keep], False

    def flush(self) -> str:
        """End of generation: everything held, an incomplete trailing character as U+FFFD."""
        text = self._held + self._decoder.decode(b"", final=True)
        self._held = ""
        return text

    def _partial_stop_length(self, text: str) -> int:
        """Length of the longest suffix of ``text`` that is a proper prefix of some stop sequence.

        Only suffixes that start with a stop's first character can match, so each stop costs one scan of the
        last ``len(stop) - 1`` characters plus a comparison per occurrence of that character, not a slice per
        possible length (per-token work stays small even with long stop strings)."""
        best = 0
        for stop in self._stops:
            window = min(len(stop) - 1, len(text))
            start = len(text) - window
            at = text.find(stop[0], start)
            while at != -1 and len(text) - at > best:
                if stop.startswith(text[at:]):
                    best = len(text) - at
                    break
                at = text.find(stop[0], at + 1)
        return best
