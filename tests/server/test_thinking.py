"""Splitting reasoning from the answer, at every chunk boundary."""

from __future__ import annotations

import pytest

from server.thinking import ThinkingParser

CASES = [
    ("<think>Let me see.</think>The answer is 4.", "Let me see.", "The answer is 4."),
    ("\n <think>\nhmm\n</think>\n\nYes.", "hmm\n", "Yes."),
    ("No reasoning here.", "", "No reasoning here."),
    ("<thin", "", "<thin"),
    ("<think>unfinished", "unfinished", ""),
    ("<think></think>Done", "", "Done"),
    ("Text with <think>inside</think> stays", "", "Text with <think>inside</think> stays"),
]


def run(chunks: list[str]) -> tuple[str, str]:
    parser = ThinkingParser()
    thinking = content = ""
    for chunk in chunks:
        step = parser.feed(chunk)
        thinking += step.thinking
        content += step.content
    step = parser.flush()
    return thinking + step.thinking, content + step.content


@pytest.mark.parametrize(("text", "thinking", "content"), CASES, ids=[c[0][:20] for c in CASES])
def test_whole_and_split_at_every_position(text: str, thinking: str, content: str) -> None:
    assert run([text]) == (thinking, content)
    for cut in range(1, len(text)):
        assert run([text[:cut], text[cut:]]) == (thinking, content), cut
    assert run(list(text)) == (thinking, content)


def test_nothing_is_emitted_while_the_opening_tag_may_still_come() -> None:
    parser = ThinkingParser()
    assert parser.feed("<th") == ("", "")
    assert parser.feed("ink>a") == ("a", "")
    assert parser.feed("b</th") == ("b", "")
    assert parser.feed("ink>c") == ("", "c")
