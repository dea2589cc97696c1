"""Typed errors. Code raises these; the API layer renders them in one place per dialect.

Hierarchy::

    CorralError                      anything Corral raises on purpose
    └── ApiError                     carries status_code and openai_type; message is the exact wire text
        ├── BadRequest (400)
        │   ├── InvalidModelName     a name that fails Ollama's validation
        │   ├── InvalidDigest        a digest that is not sha256:<64 hex>
        │   ├── DigestMismatch       uploaded bytes do not hash to the digest named
        │   ├── ModelfileError       a Modelfile that does not parse (line number + offending text)
        │   ├── TemplateError        a TEMPLATE that does not parse
        │   ├── InvalidOption        an option or PARAMETER with an unknown name or a bad value
        │   ├── InvalidModelFile     FROM/files point at something that is not a usable GGUF
        │   ├── CapabilityError      the model cannot do what was asked (tools, insert, embedding ...)
        │   └── PinMismatch          a registry serves another manifest than the pinned one (registry/errors.py)
        ├── NotFound (404)
        │   ├── ModelNotFound
        │   └── BlobNotFound
        ├── Unauthorized (401)       API keys are on and the request has none, or a wrong one
        ├── PayloadTooLarge (413)    a request body over CORRAL_MAX_REQUEST_BYTES
        ├── RequestCanceled (499)    the client went away while the request waited
        ├── ServerBusy (503)         the waiting queue is full
        ├── ShuttingDown (503)       the server is draining: new work is refused, work left at the deadline ends
        ├── Unsupported (501)        an Ollama feature Corral does not have
        └── InternalError (500)
            ├── ModelLoadFailed      llama.cpp could not load the file
            └── RegistryError        a registry failed or refused, in Ollama's texts (registry/errors.py)

The message of an ApiError is the exact text Ollama sends (see reference/ollama-api.md), so the native
renderer writes ``{"error": message}`` and the OpenAI renderer wraps the same text. Never map errors by
matching message text: raise the class that says what happened.
"""

from __future__ import annotations

from typing import ClassVar


class CorralError(Exception):
    """Base of every error Corral raises deliberately."""


class ApiError(CorralError):
    """An error with a wire representation: an HTTP status and an OpenAI error type."""

    status_code: ClassVar[int] = 500
    openai_type: ClassVar[str] = "api_error"
    # Extra response headers the renderers send with this error (Retry-After, WWW-Authenticate).
    headers: ClassVar[dict[str, str]] = {}

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class BadRequest(ApiError):
    status_code = 400
    openai_type = "invalid_request_error"


class InvalidModelName(BadRequest):
    """A model name that fails validation. The default text is Ollama's."""

    def __init__(self, message: str = "invalid model name") -> None:
        super().__init__(message)


class InvalidDigest(BadRequest):
    def __init__(self, message: str = "invalid digest format") -> None:
        super().__init__(message)


class DigestMismatch(BadRequest):
    def __init__(self, expected: str, got: str) -> None:
        super().__init__(f'digest mismatch, expected "{expected}", got "{got}"')
        self.expected = expected
        self.got = got


class ModelfileError(BadRequest):
    """A Modelfile that does not parse. ``line`` is 1-based, 0 when the error is not tied to a line."""

    def __init__(self, message: str, *, line: int = 0, text: str = "") -> None:
        full = f"(line {line}): {message}" if line else message
        if text and line:
            full = f"{full}: {text!r}" if text not in message else full
        super().__init__(full)
        self.line = line
        self.text = text


class TemplateError(BadRequest):
    pass


class InvalidOption(BadRequest):
    pass


class InvalidModelFile(BadRequest):
    pass


class CapabilityError(BadRequest):
    pass


class NotFound(ApiError):
    status_code = 404
    openai_type = "not_found_error"


class ModelNotFound(NotFound):
    pass


class BlobNotFound(NotFound):
    pass


class Unauthorized(ApiError):
    """A missing or wrong API key (``CORRAL_API_KEYS``). Never carries the key itself."""

    status_code = 401
    openai_type = "invalid_request_error"
    headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": "Bearer"}


class PayloadTooLarge(ApiError):
    status_code = 413
    openai_type = "invalid_request_error"


class RequestCanceled(ApiError):
    status_code = 499

    def __init__(self, message: str = "request canceled") -> None:
        super().__init__(message)


class ServerBusy(ApiError):
    status_code = 503

    def __init__(self, message: str = "server busy, please try again.  maximum pending requests exceeded") -> None:
        super().__init__(message)


class ShuttingDown(ApiError):
    """The server received SIGTERM: new work goes to another replica; work still running at the drain deadline
    ends with this error."""

    status_code = 503
    headers: ClassVar[dict[str, str]] = {"Retry-After": "5"}

    def __init__(self, message: str = "the server is shutting down; retry on another replica") -> None:
        super().__init__(message)


class Unsupported(ApiError):
    status_code = 501


class InternalError(ApiError):
    status_code = 500


class ModelLoadFailed(InternalError):
    pass


class SettingsError(CorralError):
    """An environment variable with a value Corral cannot use; raised at start, names the variable."""
