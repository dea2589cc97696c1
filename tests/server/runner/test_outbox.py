"""The outbox: a compute step's events leave the runner as one message, in order; events outside a step (a
request refused while being admitted) leave at once; errors are made picklable; a request's sink says when
its last event went."""

from __future__ import annotations

import pickle

from server.engine import Done, Token
from server.errors import BadRequest, InternalError
from server.runner.messages import Events
from server.runner.outbox import Outbox, RequestSink
from server.runner.process import portable

DONE = Done("stop", 1, 1, 1, 1, (1,))


class Unpicklable(Exception):
    def __reduce__(self) -> object:
        raise TypeError("not picklable")


def _token(text: str) -> Token:
    return Token(text, (1,))


def test_a_steps_events_go_out_as_one_message_in_order() -> None:
    sent: list[Events] = []
    outbox = Outbox(sent.append, portable)
    outbox.began()
    outbox.add(1, _token("a"))
    outbox.add(2, _token("b"))
    outbox.add(1, DONE)
    assert sent == []  # nothing leaves mid-step
    outbox.ended()
    assert [message.items for message in sent] == [[(1, _token("a")), (2, _token("b")), (1, DONE)]]
    outbox.began()
    outbox.ended()
    assert len(sent) == 1  # an empty step sends nothing


def test_events_outside_a_step_go_at_once_and_errors_are_portable() -> None:
    sent: list[Events] = []
    outbox = Outbox(sent.append, portable)
    outbox.add(3, BadRequest("too long"))
    outbox.add(4, Unpicklable("boom"))
    assert len(sent) == 2
    (rid, error), (other, wrapped) = sent[0].items[0], sent[1].items[0]
    assert rid == 3 and isinstance(error, BadRequest) and error.message == "too long"
    assert other == 4 and isinstance(wrapped, InternalError) and "boom" in wrapped.message
    pickle.loads(pickle.dumps(sent[1]))  # what crosses the socket must survive it


def test_a_request_sink_reports_its_end_once_after_the_last_event() -> None:
    sent: list[Events] = []
    finished: list[int] = []
    outbox = Outbox(sent.append, portable)
    sink = RequestSink(7, outbox, finished.append)
    assert sink.put(_token("x")) and finished == []
    assert sink.put(DONE) and finished == [7]
    failing = RequestSink(8, outbox, finished.append)
    failing.put(InternalError("engine failed"))
    assert finished == [7, 8]
    assert [item for message in sent for item in message.items][-1][0] == 8
