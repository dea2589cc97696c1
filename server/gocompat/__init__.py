"""Go compatibility: how Ollama's Go code prints values, written once for the whole server.

- :mod:`.jsonenc`: ``encoding/json`` output (manifests, API bodies, template ``json``) and the JSON type names
  Go's decoder uses in its errors (:func:`~.jsonenc.json_type`).
- :mod:`.strconv`: ``strconv.Quote`` / ``QuoteRune`` (``%q``, ``%#v``, template error texts, PARAMETER lines).
- :mod:`.floats`: ``strconv.FormatFloat`` (``%g``/``%e``/``%f``, template number printing).
- :mod:`.timefmt`: ``time.Time`` as Go's JSON prints it (RFC 3339 with trimmed sub-seconds, ``created_at``).

Nothing here knows about HTTP or models; every other package imports these instead of re-deriving them.
"""
