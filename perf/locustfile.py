"""Entry point for ``locust -f perf/locustfile.py`` and ``corral perf run``.

Pick one user class per run (``locust -f perf/locustfile.py OpenAIChatUser ...``; all five run mixed if none
is named). ``--records-dir DIR`` keeps one JSON record per request; ``--slo`` sets exit code 3 when a
threshold is broken, judged here on Locust's own (bucketed) rows so that it also works on a master with
workers; ``corral perf run`` judges the raw records again and exactly.
"""

from __future__ import annotations

from typing import Any

from locust import events
from locust.env import Environment

from perf.recorder import Recorder
from perf.slo import SloError, parse_slos
from perf.users import ChatUser, EmbedUser, GenerateUser, OpenAIChatUser, OpenAICompletionUser

__all__ = ["ChatUser", "EmbedUser", "GenerateUser", "OpenAIChatUser", "OpenAICompletionUser"]

SLO_EXIT_CODE = 3
ROWS = {"ttft": "TTFT", "itl": "ITL", "tpot": "TPOT", "e2e": "E2E"}


@events.init.add_listener
def on_init(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    Recorder(getattr(options, "records_dir", "") or None).attach(environment)


@events.quitting.add_listener
def slo_gate(environment: Environment, **_: Any) -> None:
    """Exit code 3 when any API's rows break an SLO (errors from the E2E row, never the diluted total)."""
    text = getattr(environment.parsed_options, "slo", "")
    if not text:
        return
    try:
        slos = parse_slos(text)
    except SloError as exc:
        environment.process_exit_code = 2
        print(f"Error: {exc}")
        return
    kinds = {kind for (name, kind) in environment.stats.entries if name == "E2E"}
    for kind in kinds:
        e2e = environment.stats.get("E2E", kind)
        for slo in slos:
            if slo.percentile is None:
                value = e2e.fail_ratio
            else:
                row = environment.stats.get(ROWS[slo.metric], kind)
                value = row.get_response_time_percentile(slo.percentile / 100) if row.num_requests else 0
            if value > slo.limit:
                print(f"SLO broken for {kind}: {slo.label} (measured {value:g})")
                environment.process_exit_code = SLO_EXIT_CODE
