"""Golden renders of library-style templates (reference §6.4) for the standard conversations.

``golden/<name>.gotmpl`` is the template, ``golden/<name>/<scenario>.txt`` the exact expected prompt; both are
read as bytes-exact text (trailing newlines matter). Templates using ``.Messages`` get Ollama's messages-mode
data; ``legacy-chatml`` is rendered turn by turn as Ollama does for ``.System/.Prompt/.Response`` templates
(both through ``server.prompt.render_go_template``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from server.gotemplate import (
    Arguments,
    Message,
    MessagesData,
    Template,
    Tool,
    ToolCall,
    ToolCallFunction,
)
from server.prompt import render_go_template

GOLDEN = Path(__file__).parent / "golden"

SYSTEM = Message(role="system", content="You are a helpful assistant.")
USER_1 = Message(role="user", content="Hello, how are you?")
ASSISTANT_1 = Message(role="assistant", content="I'm doing great. How can I help you today?")
USER_2 = Message(role="user", content="I'd like to show off how chat templating works!")

WEATHER_TOOL = Tool.from_json(
    {
        "type": "function",
        "function": {
            "name": "get_current_weather",
            "description": "Get the current weather for a location & unit",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {"type": "string", "description": "The city and country, e.g. Paris, France"},
                    "format": {
                        "type": "string",
                        "description": "The temperature unit to use",
                        "enum": ["celsius", "fahrenheit"],
                    },
                },
                "required": ["location", "format"],
            },
        },
    }
)
TOOL_CALL = ToolCall(
    function=ToolCallFunction(
        name="get_current_weather", arguments=Arguments({"location": "Paris, France", "format": "celsius"})
    )
)

SCENARIOS: dict[str, tuple[list[Message], list[Tool]]] = {
    "user": ([USER_1], []),
    "user-assistant-user": ([USER_1, ASSISTANT_1, USER_2], []),
    "system-user-assistant-user": ([SYSTEM, USER_1, ASSISTANT_1, USER_2], []),
    "tools": (
        [
            Message(role="user", content="What is the weather like in Paris today?"),
            Message(role="assistant", tool_calls=(TOOL_CALL,)),
            Message(role="tool", content="22", tool_name="get_current_weather"),
        ],
        [WEATHER_TOOL],
    ),
}


def messages_data(messages: list[Message], tools: list[Tool]) -> MessagesData:
    return {
        "System": "\n\n".join(m.content for m in messages if m.role == "system"),
        "Messages": messages,
        "Tools": tools,
        "Response": "",
        "Think": False,
        "ThinkLevel": "",
        "IsThinkSet": False,
    }


GOLDEN_CASES = [
    pytest.param(path.parent.name, path.stem, id=f"{path.parent.name}-{path.stem}")
    for path in sorted(GOLDEN.glob("*/*.txt"))
]


def read(path: Path) -> str:
    return path.read_bytes().decode("utf-8")


@pytest.mark.parametrize(("name", "scenario"), GOLDEN_CASES)
def test_golden(name: str, scenario: str) -> None:
    template = Template.parse(read(GOLDEN / f"{name}.gotmpl"))
    messages, tools = SCENARIOS[scenario]
    # Messages mode for templates using .Messages, turn-by-turn legacy rendering for the others.
    rendered = render_go_template(template, messages, tools)
    assert rendered == read(GOLDEN / name / f"{scenario}.txt")


def test_every_template_has_the_three_standard_scenarios() -> None:
    for template in GOLDEN.glob("*.gotmpl"):
        scenarios = {p.stem for p in (GOLDEN / template.stem).glob("*.txt")}
        assert {"user", "user-assistant-user", "system-user-assistant-user"} <= scenarios, template.stem


def test_gemma_accumulates_separate_system_messages() -> None:
    template = Template.parse(read(GOLDEN / "gemma-instruct.gotmpl"))
    messages = [SYSTEM, USER_1, Message(role="system", content="Be brief."), USER_2]
    rendered = template.execute(messages_data(messages, []))
    assert rendered == (
        "<start_of_turn>user\nYou are a helpful assistant.\nHello, how are you?<end_of_turn>\n"
        "<start_of_turn>user\nBe brief.\nI'd like to show off how chat templating works!<end_of_turn>\n"
        "<start_of_turn>model\n"
    )
    two_systems = [SYSTEM, Message(role="system", content="Be brief."), USER_1]
    rendered = template.execute(messages_data(two_systems, []))
    assert rendered.startswith("<start_of_turn>user\nYou are a helpful assistant.\n\nBe brief.\nHello")


def test_qwen_legacy_branch_renders_prompt_form() -> None:
    template = Template.parse(read(GOLDEN / "qwen2.5.gotmpl"))
    rendered = template.execute({"System": "S", "Prompt": "P", "Response": "R"})
    assert (
        rendered == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nP<|im_end|>\n<|im_start|>assistant\nR<|im_end|>"
    )


@pytest.mark.parametrize(
    ("name", "tag"),
    [
        pytest.param("qwen2.5", "<tool_call>", id="qwen2.5"),
        pytest.param("chatml", None, id="chatml-no-tools"),
        pytest.param("legacy-chatml", None, id="legacy-no-tools"),
    ],
)
def test_golden_tool_call_tag(name: str, tag: str | None) -> None:
    assert Template.parse(read(GOLDEN / f"{name}.gotmpl")).tool_call_tag() == tag


@pytest.mark.parametrize(
    ("name", "tools", "insert"),
    [
        pytest.param("qwen2.5", True, False, id="qwen2.5"),
        pytest.param("chatml", False, False, id="chatml"),
        pytest.param("legacy-chatml", False, False, id="legacy"),
    ],
)
def test_golden_capabilities(name: str, tools: bool, insert: bool) -> None:
    template = Template.parse(read(GOLDEN / f"{name}.gotmpl"))
    assert template.references("tools") is tools
    assert template.references("suffix") is insert
