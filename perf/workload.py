"""The workload: prompts of a controlled length with unique prefixes, and the request body for each API.

Every prompt starts with its own id, so no two requests share a prefix and the server's prefix cache cannot
hide prefill. The filler is drawn from a fixed list of short, common English words (one token each in the
usual BPE vocabularies), seeded by the prompt id, so a run is reproducible and the input length in tokens is
close to ``input_words`` plus the chat template; the server's ``prompt_eval_count`` records the true length.
Output length is fixed with ``num_predict`` / ``max_tokens``; the model may still stop early at end of
sequence unless ``ignore_eos`` is set for a server that honours it, and records keep the server's count.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

from perf.apis import Api

_WORD_TEXT = """
the a of and to in is it that was for on are with as his they at be this from have or by one had not but what
all were when we there can an your which their said if do will each about how up out them then she many some so
these would other into has more her two like him see time could no make than first been its who now people my
made over did down only way find use may water long little very after words called just where most know get
through back much go good new write our me man too any day same right look think also around another came come
work three must because does part even place well such here take why help put different away again off went old
number great tell men say small every found still between name should home big give air line set own under read
last never us left end along while might next sound below saw something thought both few those always show large
often together asked house world going want school important until form food keep children feet land side
without boy once animal life enough took four head above kind began almost live page got earth need far hand
high year mother light country father let night picture being study second soon story since white ever paper
hard near sentence better best across during today however sure knew try told young sun thing whole hear example
heard several change answer room sea against top turned learn
"""
WORDS = tuple(_WORD_TEXT.split())

INSTRUCTION = "Using the words above, write a long story. Keep writing."


@dataclass(frozen=True)
class Workload:
    """What every request of a run looks like. ``temperature`` 0 and ``seed`` make outputs reproducible."""

    model: str
    input_words: int = 128
    output_tokens: int = 64
    seed: int = 0
    stream: bool = True
    ignore_eos: bool = False
    temperature: float = 0.0

    def prompt(self, prompt_id: str) -> str:
        """The prompt for ``prompt_id``: the id first (a unique prefix), seeded filler, the instruction."""
        rng = random.Random(f"{self.seed}:{prompt_id}")
        filler = " ".join(rng.choice(WORDS) for _ in range(self.input_words))
        return f"Request {prompt_id}. {filler}\n{INSTRUCTION}"

    def body(self, api: Api, prompt_id: str) -> dict[str, Any]:
        """The JSON body of one request to ``api``."""
        prompt = self.prompt(prompt_id)
        if api.name == "embed":
            return {"model": self.model, "input": prompt}
        if api.dialect == "native":
            options: dict[str, Any] = {
                "num_predict": self.output_tokens,
                "temperature": self.temperature,
                "seed": self.seed,
            }
            body: dict[str, Any] = {"model": self.model, "stream": self.stream, "options": options}
            if api.name == "chat":
                body["messages"] = [{"role": "user", "content": prompt}]
            else:
                body["prompt"] = prompt
            return body
        body = {
            "model": self.model,
            "stream": self.stream,
            "max_tokens": self.output_tokens,
            "temperature": self.temperature,
            "seed": self.seed,
        }
        if self.stream:
            body["stream_options"] = {"include_usage": True}
        if self.ignore_eos:
            body["ignore_eos"] = True
        if api.name == "openai-chat":
            body["messages"] = [{"role": "user", "content": prompt}]
        else:
            body["prompt"] = prompt
        return body

    def describe(self) -> dict[str, Any]:
        return asdict(self)
