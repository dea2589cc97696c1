"""`corral run`, `ps` and `stop` against a real server with the real smollm2 model."""

from __future__ import annotations

import io
import sys

import pytest

from server.cli import main
from server.cli.client import Client
from server.cli.run import Session, interact, timings


class Terminal(io.StringIO):
    """Typed input that claims to be a terminal, so `run` goes interactive."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def host(model_server, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OLLAMA_HOST", model_server.url)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # nothing piped in
    return model_server.url


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


def test_one_shot_prompt_streams_the_answer(host, capsys) -> None:
    code, out = run("run", "smollm2:135m", "Say", "hi.", "--verbose")
    assert code == 0 and out.strip()
    err = capsys.readouterr().err
    assert "eval rate:" in err and "tokens/s" in err and "prompt eval count:" in err


def test_one_shot_is_deterministic_with_temperature_zero(host) -> None:
    client = Client(host)
    try:
        outputs = []
        for _ in range(2):
            session = Session(model="smollm2:135m", options={"temperature": 0, "num_predict": 8})
            out = io.StringIO()
            interact(client, session, io.StringIO("What is 2+2?\n/bye\n"), out)
            outputs.append(out.getvalue())
        assert outputs[0] == outputs[1]
    finally:
        client.close()


def test_interactive_commands(host) -> None:
    client = Client(host)
    session = Session(model="smollm2:135m")
    typed = (
        "/set parameter num_predict 4\n/set parameter temperature 0\n"
        '"""Line one\nline two"""\n/clear\n/show system\n/nope\n/bye\n'
    )
    out = io.StringIO()
    try:
        assert interact(client, session, io.StringIO(typed), out) == 0
    finally:
        client.close()
    text = out.getvalue()
    assert "Set parameter 'num_predict' to '4'" in text
    assert session.options == {"num_predict": 4, "temperature": 0.0}
    assert "Cleared session context" in text and session.messages == []
    assert "You are a helpful AI assistant named SmolLM" in text
    assert "Unknown command '/nope'" in text
    assert "... " in text, "multi-line input prompts for continuation lines"


def test_bad_parameter_is_reported_not_fatal(host) -> None:
    client = Client(host)
    session = Session(model="smollm2:135m")
    out = io.StringIO()
    try:
        interact(client, session, io.StringIO("/set parameter bogus 1\n/bye\n"), out)
    finally:
        client.close()
    assert "Couldn't set parameter: unknown parameter 'bogus'" in out.getvalue()


def test_run_goes_interactive_on_a_terminal(host) -> None:
    import argparse

    from server.cli.run import run as run_command

    client = Client(host)
    out = io.StringIO()
    args = argparse.Namespace(
        model="smollm2:135m", prompt=[], format=None, keepalive=None, verbose=False, stdin=Terminal("/bye\n")
    )
    try:
        assert run_command(client, args, out) == 0
    finally:
        client.close()
    assert out.getvalue().startswith(">>> ")


def test_ps_and_stop(host) -> None:
    run("run", "smollm2:135m", "Hi", "--keepalive", "10m")
    code, listing = run("ps")
    assert code == 0
    lines = listing.splitlines()
    assert lines[0].split() == ["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"]
    assert lines[1].startswith("smollm2:135m") and "100% CPU" in lines[1] and "minutes from now" in lines[1]
    assert run("stop", "smollm2:135m")[0] == 0
    assert len(run("ps")[1].splitlines()) == 1


def test_unknown_model_fails_before_anything_is_typed(host, capsys) -> None:
    assert run("run", "nope", "hi")[0] == 1
    assert capsys.readouterr().err == "Error: model 'nope' not found\n"


def test_timings_block() -> None:
    text = timings({"total_duration": 2_000_000_000, "eval_count": 10, "eval_duration": 500_000_000})
    assert "total duration:       2.000000s" in text
    assert "eval rate:            20.00 tokens/s" in text
