"""Loaded GGUF weights and their vocabulary: the llama_model handle, tokenization, detokenization.

llama.cpp is called through llama-cpp-python's ctypes bindings, which are untyped; this module (and the other
engine modules) convert every value that crosses the boundary to a Python type right away.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import llama_cpp

from server.errors import InternalError, ModelLoadFailed
from server.memory import ModelShape

from .params import LoadParams

log = logging.getLogger(__name__)
llama_log = logging.getLogger("server.engine.llama_cpp")

GGUF_MAGIC = b"GGUF"

# llama.cpp log levels (ggml_log_level): 0 none, 1 debug, 2 info, 3 warn, 4 error, 5 cont.
_LEVELS = {1: logging.DEBUG, 2: logging.DEBUG, 3: logging.WARNING, 4: logging.ERROR}


def _forward_log(level: int, text: bytes | None, _user_data: Any) -> None:
    # llama.cpp logs a lot at info level while loading; route it to logging so the server decides what shows.
    if text:
        message = text.decode("utf-8", "replace").rstrip("\n")
        if message:
            llama_log.log(_LEVELS.get(level, logging.DEBUG), "%s", message)


class _Backend:
    """Process-wide llama.cpp initialisation, done once. llama_backend_init must precede any other call, and the
    log callback object must stay referenced for as long as llama.cpp may call it (for the process)."""

    _lock = threading.Lock()
    _done = False
    _callback: Any = None

    @classmethod
    def ensure(cls, numa: bool) -> None:
        with cls._lock:
            if cls._done:
                return
            cls._callback = llama_cpp.llama_log_callback(_forward_log)
            llama_cpp.llama_log_set(cls._callback, None)
            llama_cpp.llama_backend_init()
            if numa:
                llama_cpp.llama_numa_init(llama_cpp.GGML_NUMA_STRATEGY_DISTRIBUTE)
            cls._done = True


class _ErrorCollector(logging.Handler):
    """Keeps llama.cpp's error lines logged by one thread, to explain a failed load."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.lines.append(record.getMessage())


def _check_gguf_header(path: str) -> None:
    """Fail fast, with a clear message, on files llama.cpp would reject (or worse, half-read)."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise ModelLoadFailed(f"unable to load model {path}: {exc.strerror or exc}") from exc
    if magic != GGUF_MAGIC:
        raise ModelLoadFailed(f"unable to load model {path}: not a GGUF file (bad magic {magic!r})")
    if size < 32:
        raise ModelLoadFailed(f"unable to load model {path}: truncated GGUF file ({size} bytes)")


class Weights:
    """One llama_model (weights + vocabulary). Thread-safe for reading: tokenization and detokenization may run
    on any thread while contexts decode. ``free()`` must be called after every context using it is freed."""

    def __init__(self, params: LoadParams) -> None:
        _Backend.ensure(params.numa)
        path = str(Path(params.model_path))
        _check_gguf_header(path)
        mparams = llama_cpp.llama_model_default_params()
        mparams.n_gpu_layers = params.num_gpu if params.num_gpu >= 0 else -1
        mparams.main_gpu = params.main_gpu
        if params.use_mmap is not None:
            mparams.load_mode = llama_cpp.LLAMA_LOAD_MODE_MMAP if params.use_mmap else llama_cpp.LLAMA_LOAD_MODE_NONE
        collector = _ErrorCollector()
        llama_log.addHandler(collector)
        try:
            model = llama_cpp.llama_model_load_from_file(path.encode(), mparams)
        finally:
            llama_log.removeHandler(collector)
        if not model:
            detail = "; ".join(line for line in collector.lines if line.strip())[-500:]
            raise ModelLoadFailed(f"unable to load model {path}" + (f": {detail}" if detail else ""))
        self.model: Any = model
        self.path = path
        self.vocab: Any = llama_cpp.llama_model_get_vocab(model)
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(self.vocab))
        self.n_ctx_train = int(llama_cpp.llama_model_n_ctx_train(model))
        self.n_embd = int(llama_cpp.llama_model_n_embd(model))
        self.n_layer = int(llama_cpp.llama_model_n_layer(model))
        self.size_bytes = int(llama_cpp.llama_model_size(model))
        self.newline = int(llama_cpp.llama_vocab_nl(self.vocab))
        self.has_encoder = bool(llama_cpp.llama_model_has_encoder(model))
        self.has_decoder = bool(llama_cpp.llama_model_has_decoder(model))
        self.n_swa = int(llama_cpp.llama_model_n_swa(model))
        self._pieces: dict[int, bytes] = {}
        self._pieces_lock = threading.Lock()
        # Tokenizing runs on request threads; free() waits for those calls so none reads a freed vocabulary.
        self._users = threading.Condition()
        self._n_users = 0

    def free(self) -> None:
        """Free the model once no tokenizer call is running; later calls raise InternalError."""
        with self._users:
            self._users.wait_for(lambda: self._n_users == 0)
            model, self.model, self.vocab = self.model, None, None
        if model is not None:
            llama_cpp.llama_model_free(model)

    @contextmanager
    def _vocab(self) -> Iterator[Any]:
        with self._users:
            if self.vocab is None:
                raise InternalError("the model was unloaded")
            self._n_users += 1
        try:
            yield self.vocab
        finally:
            with self._users:
                self._n_users -= 1
                self._users.notify_all()

    def meta(self, key: str) -> str | None:
        """A GGUF metadata value as a string, None when absent."""
        buf = ctypes.create_string_buffer(256)
        n = int(llama_cpp.llama_model_meta_val_str(self.model, key.encode(), buf, len(buf)))
        if n < 0:
            return None
        if n >= len(buf):
            buf = ctypes.create_string_buffer(n + 1)
            llama_cpp.llama_model_meta_val_str(self.model, key.encode(), buf, len(buf))
        return buf.value.decode("utf-8", "replace")

    @property
    def shape(self) -> ModelShape:
        """The facts the KV-cache estimate (``server.memory``) needs."""
        return ModelShape(
            n_layer=self.n_layer,
            n_embd=self.n_embd,
            n_head=int(llama_cpp.llama_model_n_head(self.model)),
            n_head_kv=int(llama_cpp.llama_model_n_head_kv(self.model)),
        )

    def tokenize(self, text: str, *, add_special: bool = True, parse_special: bool = True) -> list[int]:
        """Text to token ids. ``add_special`` adds BOS/EOS as the model asks; ``parse_special`` turns
        ``<|im_start|>``-style text into its control token (prompts rendered from templates need that)."""
        data = text.encode("utf-8")
        capacity = len(data) + 16
        buf = (llama_cpp.llama_token * capacity)()
        with self._vocab() as vocab:
            n = int(llama_cpp.llama_tokenize(vocab, data, len(data), buf, capacity, add_special, parse_special))
            if n < 0:
                capacity = -n
                buf = (llama_cpp.llama_token * capacity)()
                n = int(llama_cpp.llama_tokenize(vocab, data, len(data), buf, capacity, add_special, parse_special))
        return list(buf[:n])

    def piece(self, token: int) -> bytes:
        """The bytes one token renders to (control tokens as their text, so stop strings can match them)."""
        cached = self._pieces.get(token)
        if cached is not None:
            return cached
        buf = ctypes.create_string_buffer(64)
        with self._vocab() as vocab:
            n = int(llama_cpp.llama_token_to_piece(vocab, token, buf, len(buf), 0, True))
            if n < 0:
                buf = ctypes.create_string_buffer(-n)
                n = int(llama_cpp.llama_token_to_piece(vocab, token, buf, len(buf), 0, True))
        piece = buf.raw[:n]
        with self._pieces_lock:
            self._pieces[token] = piece
        return piece

    def detokenize(self, tokens: list[int]) -> str:
        return b"".join(self.piece(t) for t in tokens).decode("utf-8", "replace")

    def is_eog(self, token: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(self.vocab, token))

    def add_bos(self) -> bool:
        return bool(llama_cpp.llama_vocab_get_add_bos(self.vocab))

    def add_eos(self) -> bool:
        return bool(llama_cpp.llama_vocab_get_add_eos(self.vocab))
