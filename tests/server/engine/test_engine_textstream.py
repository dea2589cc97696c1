"""TextStream: UTF-8 assembly and stop sequences across token boundaries (no model needed)."""

from __future__ import annotations

import pytest

from server.engine.textstream import TextStream


def feed(stops: list[str], pieces: list[bytes]) -> tuple[str, bool]:
    stream = TextStream(stops)
    out = []
    for piece in pieces:
        text, stopped = stream.push(piece)
        out.append(text)
        if stopped:
            return "".join(out), True
    out.append(stream.flush())
    return "".join(out), False


@pytest.mark.parametrize(
    ("stops", "pieces", "expected"),
    [
        ([], [b"Hello", b" world"], ("Hello world", False)),
        (["END"], [b"abc", b"EN", b"D", b"xyz"], ("abc", True)),
        (["END"], [b"abcE", b"ND"], ("abc", True)),
        (["END"], [b"abc", b"EN", b"d"], ("abcENd", False)),
        (["END"], [b"abc", b"EN"], ("abcEN", False)),
        (["\n\n", "User:"], [b"Hi", b"\n", b"Us", b"er:", b" more"], ("Hi\n", True)),
        (["\n\n", "User:"], [b"Hi", b"\n", b"\n", b"User:"], ("Hi", True)),
        (["lo w"], [b"Hel", b"lo", b" wor", b"ld"], ("Hel", True)),
        (["aab"], [b"a", b"a", b"a", b"b"], ("a", True)),
        (["<|im_end|>"], [b"ok", b"<|im_end|>"], ("ok", True)),
        # a multi-byte character split over two tokens is released whole
        ([], ["é".encode()[:1], "é".encode()[1:]], ("é", False)),
        (["é"], [b"x", "é".encode()[:1], "é".encode()[1:]], ("x", True)),
        # an incomplete character at the end becomes U+FFFD
        ([], [b"a", "é".encode()[:1]], ("a\ufffd", False)),
    ],
)
def test_stop_sequences(stops: list[str], pieces: list[bytes], expected: tuple[str, bool]) -> None:
    assert feed(stops, pieces) == expected


def test_text_is_held_only_while_it_may_start_a_stop() -> None:
    stream = TextStream(["STOP"])
    assert stream.push(b"ab") == ("ab", False)
    assert stream.push(b"ST") == ("", False)
    assert stream.held == "ST"
    assert stream.push(b"x") == ("STx", False)
    assert stream.held == ""


def test_partial_character_is_not_released() -> None:
    stream = TextStream([])
    assert stream.push("€".encode()[:2]) == ("", False)
    assert stream.push("€".encode()[2:]) == ("€", False)
