"""llm-manager: one API over many LLM providers, with task routing, fallback, retries and streaming.

>>> from llm_manager import LLMManager
>>> async with LLMManager.from_config("llm-manager.yaml") as llm:   # doctest: +SKIP
...     r = await llm.generate("Analyze this anomaly pattern", task="analysis")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llm_manager.embedding import EmbeddingInput, EmbeddingResponse
from llm_manager.errors import (
    AllCandidatesFailedError,
    AuthenticationError,
    BudgetExceededError,
    CircuitOpenError,
    ConfigError,
    ContentFilterError,
    ContextTooLargeError,
    ConversationNotFoundError,
    ExtractionError,
    InvalidRequestError,
    LLMManagerError,
    ModelUnavailableError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    StateUnavailableError,
    StreamInterruptedError,
    UnsupportedContentError,
)
from llm_manager.prompts import OptimizedPrompt, PromptOptimizer
from llm_manager.types import (
    Attempt,
    AudioPart,
    FilePart,
    ImagePart,
    Message,
    Passthrough,
    PromptOptimization,
    Reasoning,
    ReasoningPart,
    Request,
    Response,
    ResponseMetadata,
    StreamEvent,
    TextPart,
    Usage,
)

if TYPE_CHECKING:
    from llm_manager.config import Settings
    from llm_manager.manager import LLMManager
    from llm_manager.response_stream import ResponseStream
    from llm_manager.sync import SyncLLMManager

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "AllCandidatesFailedError",
    "Attempt",
    "AudioPart",
    "AuthenticationError",
    "BudgetExceededError",
    "CircuitOpenError",
    "ConfigError",
    "ContentFilterError",
    "ContextTooLargeError",
    "ConversationNotFoundError",
    "EmbeddingInput",
    "EmbeddingResponse",
    "ExtractionError",
    "FilePart",
    "ImagePart",
    "InvalidRequestError",
    "LLMManager",
    "LLMManagerError",
    "Message",
    "ModelUnavailableError",
    "OptimizedPrompt",
    "Passthrough",
    "PromptOptimization",
    "PromptOptimizer",
    "ProviderError",
    "ProviderTimeoutError",
    "RateLimitError",
    "Reasoning",
    "ReasoningPart",
    "Request",
    "Response",
    "ResponseMetadata",
    "ResponseStream",
    "Settings",
    "StateUnavailableError",
    "StreamEvent",
    "StreamInterruptedError",
    "SyncLLMManager",
    "TextPart",
    "UnsupportedContentError",
    "Usage",
]

_LAZY = {
    "LLMManager": "llm_manager.manager",
    "ResponseStream": "llm_manager.response_stream",
    "SyncLLMManager": "llm_manager.sync",
    "Settings": "llm_manager.config",
}


def __getattr__(name: str) -> Any:
    # The manager pulls in config, routing and the executor; importing them lazily keeps `import llm_manager` cheap.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'llm_manager' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
