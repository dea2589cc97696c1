"""Prompt construction (``server.prompt``, ``server.chat_template``): golden renders plus table-driven rules.

Golden files: ``golden/prompt/<template>/<scenario>.txt`` is the exact prompt (bytes-exact, trailing newlines
matter) for one template and one request scenario. Templates are the repo's two Modelfiles, the library
templates of ``gotemplate/golden/*.gotmpl``, smollm2's GGUF Jinja template, a fill-in-the-middle template and
the default ``{{ .Prompt }}``. After a deliberate change, rewrite them with ``CORRAL_UPDATE_GOLDEN=1 pytest
tests/server/test_prompt.py`` and review the diff.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from server.chat_template import ChatTemplate
from server.errors import TemplateError
from server.gotemplate import Message, Template
from server.prompt import (
    ChatMessage,
    ChatToolCall,
    RenderedPrompt,
    ThinkSettings,
    build_chat_prompt,
    build_generate_prompt,
    collate,
    effective_messages,
    render_go_template,
)
from server.store.gguf_info import read_gguf
from server.store.modelfile import parse_modelfile

HERE = Path(__file__).parent
GOLDEN = HERE / "golden" / "prompt"
LIBRARY = HERE / "gotemplate" / "golden"
MODELFILES = HERE.parent.parent / "modelfiles"
UPDATE = os.environ.get("CORRAL_UPDATE_GOLDEN") == "1"

# smollm2's GGUF tokenizer.chat_template, byte for byte (its string literals hold real line breaks).
SMOLLM2_JINJA = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def read(path: Path) -> str:
    return path.read_bytes().decode("utf-8")


def modelfile_template(name: str) -> str:
    template = parse_modelfile(read(MODELFILES / f"{name}.Modelfile")).template
    assert template is not None
    return template


# name -> (Go template, Jinja template); (None, None) is a model with neither.
TEMPLATES: dict[str, tuple[str | None, str | None]] = {
    "smollm2": (modelfile_template("smollm2-135m"), None),
    "gemma3": (modelfile_template("gemma3-270m"), None),
    **{name: (read(LIBRARY / f"{name}.gotmpl"), None) for name in sorted(p.stem for p in LIBRARY.glob("*.gotmpl"))},
    "jinja-smollm2": (None, SMOLLM2_JINJA),
    "default": (None, None),
    "fim": (read(GOLDEN / "fim.gotmpl"), None),
}

SYSTEM = ChatMessage("system", "You are a helpful assistant.")
USER_1 = ChatMessage("user", "Hello, how are you?")
ASSISTANT_1 = ChatMessage("assistant", "I'm doing great. How can I help you today?")
USER_2 = ChatMessage("user", "I'd like to show off how chat templating works!")
MODELFILE_SYSTEM = "You are Corral's test model."
MODELFILE_MESSAGES = (ChatMessage("user", "What is 2+2?"), ChatMessage("assistant", "4"))

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather for a location & unit",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": "The city and country, e.g. Paris, France"},
                "format": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["location", "format"],
        },
    },
}
TOOL_CONVERSATION = [
    ChatMessage("user", "What is the weather like in Paris today?"),
    ChatMessage(
        "assistant",
        tool_calls=(ChatToolCall("get_current_weather", {"location": "Paris, France", "format": "celsius"}),),
    ),
    ChatMessage("tool", "22", tool_name="get_current_weather"),
]


def words(text: str) -> int:
    """The tests' tokenizer: one token per white-space separated word."""
    return len(text.split())


def filler(label: str) -> str:
    return label + " " + " ".join(["lorem"] * 39)


LONG_CONVERSATION = [
    ChatMessage("system", "Answer in one word."),
    ChatMessage("user", filler("first-question")),
    ChatMessage("assistant", filler("first-answer")),
    ChatMessage("user", filler("second-question")),
    ChatMessage("assistant", filler("second-answer")),
    ChatMessage("user", filler("third-question")),
]

Scenario = Callable[[str | None, str | None], RenderedPrompt]


def chat(messages: list[ChatMessage], **kwargs: object) -> Scenario:
    return lambda go, jinja: build_chat_prompt(go, jinja, messages, **kwargs)  # type: ignore[arg-type]


def generate(prompt: str, **kwargs: object) -> Scenario:
    return lambda go, jinja: build_generate_prompt(go, jinja, prompt, **kwargs)  # type: ignore[arg-type]


COMMON: dict[str, Scenario] = {
    "user": chat([USER_1]),
    "user-assistant-user": chat([USER_1, ASSISTANT_1, USER_2]),
    "system-user-assistant-user": chat([SYSTEM, USER_1, ASSISTANT_1, USER_2]),
    "modelfile-system": chat([USER_1, ASSISTANT_1, USER_2], modelfile_system=MODELFILE_SYSTEM),
    "modelfile-system-request-system": chat([SYSTEM, USER_1], modelfile_system=MODELFILE_SYSTEM),
    "modelfile-messages": chat([USER_2], modelfile_system=MODELFILE_SYSTEM, modelfile_messages=MODELFILE_MESSAGES),
    "prefill": chat([USER_1, ChatMessage("assistant", "I'm doing")]),
    "images": chat([ChatMessage("user", "Compare [img] with this one.", images=(b"png-1", b"png-2"))]),
    "truncated": chat(LONG_CONVERSATION, count_tokens=words, num_ctx=140),
    "generate": generate(
        "Why is the sky blue?", modelfile_system=MODELFILE_SYSTEM, modelfile_messages=MODELFILE_MESSAGES
    ),
    "generate-system-context": generate(
        "And why is it red at sunset?",
        system="You are terse.",
        modelfile_system=MODELFILE_SYSTEM,
        modelfile_messages=MODELFILE_MESSAGES,
        context="<earlier exchange>",
    ),
}
TOOLS: dict[str, Scenario] = {"tools": chat(TOOL_CONVERSATION, tools=[WEATHER_TOOL])}
SUFFIX: dict[str, Scenario] = {
    "suffix": generate("def add(a, b):\n    ", suffix="\n\nprint(add(1, 2))\n", system="ignored in suffix mode"),
    "generate": COMMON["generate"],
}


def scenarios_for(template: str) -> dict[str, Scenario]:
    if template == "fim":
        return SUFFIX
    if template in ("smollm2", "qwen2.5"):
        return {**COMMON, **TOOLS}
    return COMMON


GOLDEN_CASES = [
    pytest.param(template, scenario, id=f"{template}-{scenario}")
    for template in TEMPLATES
    for scenario in scenarios_for(template)
]


@pytest.mark.parametrize(("template", "scenario"), GOLDEN_CASES)
def test_golden(template: str, scenario: str) -> None:
    go, jinja = TEMPLATES[template]
    rendered = scenarios_for(template)[scenario](go, jinja).prompt
    path = GOLDEN / template / f"{scenario}.txt"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rendered.encode("utf-8"))
    assert rendered == read(path)


def test_no_stray_golden_files() -> None:
    expected = {GOLDEN / template / f"{scenario}.txt" for template in TEMPLATES for scenario in scenarios_for(template)}
    assert set(GOLDEN.glob("*/*.txt")) == expected


def test_library_templates_agree_with_the_gotemplate_goldens() -> None:
    """The three standard conversations render as in ``gotemplate/golden`` (Ollama's own expected outputs)."""
    for path in LIBRARY.glob("*/*.txt"):
        if path.stem != "tools":
            assert read(GOLDEN / path.parent.name / path.name) == read(path), path


# --- the rules behind the goldens ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("think", "expected"),
    [
        (None, ThinkSettings(think=False, level="", is_set=False)),
        (True, ThinkSettings(think=True, level="medium", is_set=True)),
        (False, ThinkSettings(think=False, level="", is_set=True)),
        ("high", ThinkSettings(think=True, level="high", is_set=True)),
        ("low", ThinkSettings(think=True, level="low", is_set=True)),
    ],
)
def test_think_settings(think: bool | str | None, expected: ThinkSettings) -> None:
    assert ThinkSettings.from_request(think) == expected


@pytest.mark.parametrize(
    ("think", "expected"), [(None, "false||false"), (True, "true|medium|true"), ("max", "true|max|true")]
)
def test_think_values_reach_every_mode(think: bool | str | None, expected: str) -> None:
    values = "{{ .Think }}|{{ .ThinkLevel }}|{{ .IsThinkSet }}"
    messages = "{{ range .Messages }}{{ end }}" + values
    assert build_chat_prompt(messages, None, [USER_1], think=think).prompt == expected
    assert build_chat_prompt(values, None, [USER_1], think=think).prompt == expected
    assert build_generate_prompt(values + "{{ .Suffix }}", None, "p", suffix="s", think=think).prompt == expected + "s"


def test_collate_merges_same_role_runs_except_tool() -> None:
    messages = [
        Message("system", "A"),
        Message("system", "B"),
        Message("user", "u1", images=(b"x",)),
        Message("user", "u2", images=(b"y",)),
        Message("tool", "t1"),
        Message("tool", "t2"),
        Message("system", "C"),
    ]
    system, merged = collate(messages)
    assert system == "A\n\nB\n\nC"
    assert merged == [
        Message("system", "A\n\nB"),
        Message("user", "u1\n\nu2", images=(b"x",)),  # the merged message's images are dropped, as in Ollama
        Message("tool", "t1"),
        Message("tool", "t2"),
        Message("system", "C"),
    ]


@pytest.mark.parametrize(
    ("request_messages", "system", "modelfile_messages", "expected_roles"),
    [
        pytest.param([USER_1], "", (), ["user"], id="nothing-to-add"),
        pytest.param([USER_1], "S", (), ["system:S", "user"], id="system-prepended"),
        pytest.param([SYSTEM, USER_1], "S", (), ["system", "user"], id="request-system-wins"),
        pytest.param([USER_1, SYSTEM], "S", (), ["system:S", "user", "system"], id="only-first-message-counts"),
        pytest.param([USER_2], "S", MODELFILE_MESSAGES, ["system:S", "user", "assistant", "user"], id="messages"),
        pytest.param([SYSTEM], "S", MODELFILE_MESSAGES, ["user", "assistant", "system"], id="messages-no-system"),
        pytest.param([], "S", (), ["system:S"], id="empty-request"),
    ],
)
def test_effective_messages(
    request_messages: list[ChatMessage],
    system: str,
    modelfile_messages: tuple[ChatMessage, ...],
    expected_roles: list[str],
) -> None:
    result = effective_messages(request_messages, system, modelfile_messages)
    assert [m.role + (f":{m.content}" if m.content == system else "") for m in result] == expected_roles


def test_truncation_drops_oldest_turns_but_keeps_system_and_last_message() -> None:
    for name, (go, jinja) in TEMPLATES.items():
        if name in ("default", "fim"):
            continue
        full = build_chat_prompt(go, jinja, LONG_CONVERSATION).prompt
        cut = build_chat_prompt(go, jinja, LONG_CONVERSATION, count_tokens=words, num_ctx=140)
        assert cut.dropped == 2, name
        assert "Answer in one word." in cut.prompt, name
        assert "first-" not in cut.prompt and "second-question" in cut.prompt and "third-question" in cut.prompt
        assert words(cut.prompt) <= 140 < words(full), name


def test_truncation_keeps_the_last_message_even_when_it_alone_is_too_long() -> None:
    cut = build_chat_prompt(None, SMOLLM2_JINJA, LONG_CONVERSATION, count_tokens=words, num_ctx=5)
    assert cut.dropped == 4
    assert cut.prompt == (
        "<|im_start|>system\nAnswer in one word.<|im_end|>\n"
        f"<|im_start|>user\n{filler('third-question')}<|im_end|>\n<|im_start|>assistant\n"
    )


def test_truncation_stops_at_the_first_start_that_does_not_fit() -> None:
    """Walking back from the end, the first misfit ends the search even if an earlier start would fit."""
    sizes = {"short": 1, "huge": 100}

    def count(text: str) -> int:
        return sum(sizes.get(word, 0) for word in text.split())

    messages = [ChatMessage("user", "short"), ChatMessage("assistant", "huge"), ChatMessage("user", "short")]
    template = "{{ range .Messages }}{{ .Content }} {{ end }}"
    cut = build_chat_prompt(template, None, messages, count_tokens=count, num_ctx=50)
    assert (cut.prompt, cut.dropped) == ("short ", 2)


def test_truncation_measures_once_when_everything_fits() -> None:
    measured: list[str] = []

    def count(text: str) -> int:
        measured.append(text)
        return words(text)

    kept = build_chat_prompt(None, SMOLLM2_JINJA, LONG_CONVERSATION, count_tokens=count, num_ctx=1000)
    assert (kept.dropped, len(measured)) == (0, 1)
    assert kept.prompt == measured[0]


def test_truncation_counts_image_tokens_and_is_off_without_a_tokenizer() -> None:
    messages = [ChatMessage("user", "a", images=(b"i",)), ChatMessage("assistant", "b"), ChatMessage("user", "c")]
    template = "{{ range .Messages }}{{ .Content }} {{ end }}"
    assert build_chat_prompt(template, None, messages, count_tokens=words, num_ctx=3).dropped == 0
    cut = build_chat_prompt(template, None, messages, count_tokens=words, num_ctx=3, image_tokens=768)
    assert (cut.prompt, cut.dropped, cut.images) == ("b c ", 1, ())
    kept = build_chat_prompt(template, None, messages, num_ctx=1)
    assert (kept.prompt, kept.dropped, kept.images) == ("[img-0]a b c ", 0, (b"i",))


def test_image_tags_number_images_across_messages() -> None:
    messages = [
        ChatMessage("user", "first", images=(b"1",)),
        ChatMessage("assistant", "ok"),
        ChatMessage("user", "see [img] and [img] then", images=(b"2", b"3", b"4")),
    ]
    rendered = build_chat_prompt("{{ range .Messages }}{{ .Content }}|{{ end }}", None, messages)
    assert rendered.prompt == "[img-0]first|ok|[img-3]see [img-1] and [img-2] then|"
    assert rendered.images == (b"1", b"2", b"3", b"4")


def test_legacy_mode_renders_system_only_with_its_turn() -> None:
    """A system message after a turn starts a new turn; earlier turns do not see it (Ollama starts with "")."""
    template = Template.parse("[{{ .System }}|{{ .Prompt }}|{{ .Response }}]")
    messages = [
        Message("user", "u1"),
        Message("assistant", "a1"),
        Message("system", "s"),
        Message("user", "u2"),
        Message("tool", "ignored"),
    ]
    assert render_go_template(template, messages) == "[|u1|a1][s|u2|"


def test_default_template_is_the_prompt_alone() -> None:
    assert build_chat_prompt(None, None, [SYSTEM, USER_1]).prompt == USER_1.content
    assert build_chat_prompt("", None, [USER_1], modelfile_system="S").prompt == USER_1.content
    assert build_generate_prompt(None, None, "p", system="s").prompt == "p"


def test_go_template_wins_over_the_jinja_template() -> None:
    assert build_chat_prompt("{{ .Prompt }}!", SMOLLM2_JINJA, [USER_1]).prompt == USER_1.content + "!"


def test_parsed_templates_are_accepted() -> None:
    go = Template.parse("<{{ .Prompt }}>")
    assert build_chat_prompt(go, None, [USER_1]).prompt == f"<{USER_1.content}>"
    assert build_chat_prompt(None, ChatTemplate(SMOLLM2_JINJA), [SYSTEM]).prompt.startswith(
        "<|im_start|>system\nYou are a"
    )


def test_generate_context_is_prepended_and_skips_modelfile_messages() -> None:
    template = "{{ range .Messages }}{{ .Role }}:{{ .Content }};{{ end }}"
    with_context = build_generate_prompt(
        template, None, "p", modelfile_messages=MODELFILE_MESSAGES, context="CTX ", images=(b"i",)
    )
    assert with_context == RenderedPrompt(prompt="CTX user:[img-0]p;", images=(b"i",))
    empty_context = build_generate_prompt(template, None, "p", modelfile_messages=MODELFILE_MESSAGES, context="")
    assert empty_context.prompt == "user:p;"
    without = build_generate_prompt(template, None, "p", modelfile_messages=MODELFILE_MESSAGES)
    assert without.prompt == "user:What is 2+2?;assistant:4;user:p;"


def test_suffix_mode_needs_a_prompt() -> None:
    template = "{{ if .Suffix }}FIM{{ else }}{{ .Prompt }}{{ end }}"
    assert build_generate_prompt(template, None, "p", suffix="s").prompt == "FIM"
    assert build_generate_prompt(template, None, "", suffix="s").prompt == ""


@pytest.mark.parametrize("source", ["{{ .Prompt ", "{{ end }}", "{{ nosuchfunc }}"])
def test_go_template_parse_errors_are_template_errors(source: str) -> None:
    with pytest.raises(TemplateError):
        build_generate_prompt(source, None, "p")
    with pytest.raises(TemplateError):
        build_chat_prompt(source, None, [USER_1])


@pytest.mark.parametrize(
    "source",
    [
        pytest.param("{% for m in messages %}", id="syntax"),
        pytest.param("{{ raise_exception('roles must alternate') }}", id="raise_exception"),
        pytest.param("{{ messages.append(1) }}", id="sandbox-immutable"),
        pytest.param("{{ messages[0]['content'] + 1 }}", id="type-error"),
    ],
)
def test_jinja_failures_are_template_errors(source: str) -> None:
    with pytest.raises(TemplateError):
        build_chat_prompt(None, source, [USER_1])


def test_jinja_environment() -> None:
    source = (
        "{{ bos_token }}{% for m in messages %}{% if m.role == 'user' %}{% continue %}{% endif %}{{ m.content }}"
        "{% endfor %}{{ tools is none }}|{{ {'a': '<&>', 'é': 1} | tojson }}|{{ strftime_now('%Y') | length }}"
        "{{ eos_token }}"
    )
    rendered = build_chat_prompt(None, source, [SYSTEM, USER_1], bos_token="<s>", eos_token="</s>").prompt
    assert rendered == '<s>You are a helpful assistant.True|{"a": "<&>", "é": 1}|4</s>'


def test_jinja_messages_carry_tool_calls_and_tools() -> None:
    source = (
        "{% for m in messages %}{{ m.role }}"
        "{% for c in m.tool_calls or [] %}[{{ c.id }} {{ c.function.name }} {{ c.function.arguments | tojson }}]"
        "{% endfor %}{% if m.name %}({{ m.name }} {{ m.tool_call_id }}){% endif %};{% endfor %}"
        "{% for t in tools %}{{ t.function.name }}{% endfor %}"
    )
    messages = [
        ChatMessage("assistant", tool_calls=(ChatToolCall("f", {"x": 1}, id="call_1"),)),
        ChatMessage("tool", "42", tool_name="f", tool_call_id="call_1"),
    ]
    rendered = build_chat_prompt(None, source, messages, tools=[{"type": "function", "function": {"name": "f"}}])
    assert rendered.prompt == 'assistant[call_1 f {"x": 1}];tool(f call_1);f'


def test_smollm2_path_carries_the_jinja_template_used_here(smollm2_path: Path) -> None:
    assert read_gguf(smollm2_path).chat_template == SMOLLM2_JINJA
