"""Corral's inference engine: continuous batching on llama.cpp (the only package that imports ``llama_cpp``).

Public API::

    model = EngineModel.load(LoadParams(model_path=..., num_ctx=4096, num_parallel=4))   # blocking
    async for event in model.generate(prompt, SamplingParams(temperature=0)):             # Token ... Done
        ...
    vectors, n_tokens = await model.embed(["text"], truncate=True)
    model.close()

Models share a :class:`ComputeThread` when given one (``EngineModel.load(params, compute)``): the server runs all
llama.cpp compute of the process on one thread.
"""

from .batching import DecodeFn
from .clock import StepStats
from .compute import ComputeThread
from .events import Done, DoneReason, Event, Logprob, Token, TopLogprob
from .model import EngineModel
from .params import LoadParams, SamplingParams
from .stream import EventStream

__all__ = [
    "ComputeThread",
    "DecodeFn",
    "Done",
    "DoneReason",
    "EngineModel",
    "Event",
    "EventStream",
    "LoadParams",
    "Logprob",
    "SamplingParams",
    "StepStats",
    "Token",
    "TopLogprob",
]
