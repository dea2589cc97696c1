"""Progress events: layer lines rate-limited, the last one always sent, ``completed`` absent while 0; and the
CLI's rendering of them (a bar per layer, quarters in a log)."""

from __future__ import annotations

import io

from server.cli.registry import TransferDisplay
from server.registry.progress import LayerProgress, Progress
from server.store.blobs import Digest

DIGEST = Digest("0123456789ab" + "0" * 52)


def test_layer_progress_is_rate_limited_but_ends_complete() -> None:
    events: list[Progress] = []
    progress = LayerProgress(events.append, "pulling", DIGEST, 1000, interval=3600)
    for done in range(0, 1001, 10):
        progress(done)
    progress.finish()
    assert events == [
        Progress("pulling 0123456789ab", str(DIGEST), 1000, None),
        Progress("pulling 0123456789ab", str(DIGEST), 1000, 1000),
    ]


def test_layer_progress_reports_every_change_without_a_limit() -> None:
    events: list[Progress] = []
    progress = LayerProgress(events.append, "pushing", DIGEST, 30, interval=0)
    for done in (10, 10, 20, 30):
        progress(done)
    progress.finish()
    assert [e.completed for e in events] == [10, 20, 30]


def test_display_prints_quarters_of_each_layer_in_a_log() -> None:
    out = io.StringIO()
    display = TransferDisplay(out)
    display.show({"status": "pulling manifest"})
    for done in (0, 10, 30, 60, 100):
        display.show({"status": "pulling 0123456789ab", "digest": str(DIGEST), "total": 100, "completed": done})
    display.show({"status": "success"})
    display.done()
    assert out.getvalue().splitlines() == [
        "pulling manifest",
        "pulling 0123456789ab:   0% ▕                    ▏ 100 B",
        "pulling 0123456789ab:  30% ▕██████              ▏ 100 B",
        "pulling 0123456789ab:  60% ▕████████████        ▏ 100 B",
        "pulling 0123456789ab: 100% ▕████████████████████▏ 100 B",
        "success",
    ]
