"""The one exception hierarchy of llm-manager.

Every error carries a stable ``code`` (safe to match on, never reworded) plus the data a caller needs to act:
the deployment and model involved, the HTTP status and Retry-After when a provider answered, token counts when a
prompt is too large. ::

    LLMManagerError                 code, message; provider, model, deployment, request_id when known
    ├─ ConfigError                  invalid config or call; never retried
    │  └─ UnsupportedContentError   no candidate takes the request's images / audio / files
    ├─ ProviderError                status_code, body, retry_after when HTTP
    │  ├─ ModelUnavailableError     5xx, connection refused / reset         retryable
    │  │  └─ StreamInterruptedError a stream broke after it had started     (not retried once text reached you)
    │  ├─ ProviderTimeoutError      no answer / no first chunk in time      retryable
    │  ├─ RateLimitError            429; retry_after                        retryable
    │  ├─ AuthenticationError       401 / 403                               never retried
    │  ├─ InvalidRequestError       400 / 404 / 422                         never retried
    │  ├─ ContextTooLargeError      prompt over the window                  re-routed to a larger window
    │  └─ ContentFilterError        refused by a safety filter              re-routed, not retried
    ├─ ExtractionError              structured output still invalid after re-asks
    ├─ ConversationNotFoundError
    ├─ BudgetExceededError
    ├─ CircuitOpenError
    ├─ StateUnavailableError        the shared state (Redis) cannot be reached and the policy is fail_closed
    └─ AllCandidatesFailedError     every candidate failed; ``attempts`` holds each one, ``exceptions`` the errors

Whether an error is worth retrying is decided in exactly one place: :func:`llm_manager.routing.retry.is_retryable`.

Every message (and a provider error's body) is passed through :func:`~llm_manager._redact.redact` when the error is
built: an upstream that echoes the key it was sent cannot leak it through an exception, whoever prints it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from llm_manager._redact import redact

if TYPE_CHECKING:
    from llm_manager.types import Attempt

__all__ = [
    "AllCandidatesFailedError",
    "AuthenticationError",
    "BudgetExceededError",
    "CircuitOpenError",
    "ConfigError",
    "ContentFilterError",
    "ContextTooLargeError",
    "ConversationNotFoundError",
    "ExtractionError",
    "InvalidRequestError",
    "LLMManagerError",
    "ModelUnavailableError",
    "ProviderError",
    "ProviderTimeoutError",
    "RateLimitError",
    "StateUnavailableError",
    "StreamInterruptedError",
    "UnsupportedContentError",
]


class LLMManagerError(Exception):
    """Base of every error raised by llm-manager."""

    code: ClassVar[str] = "llm_manager_error"
    """Stable, machine-readable identifier of the error kind."""

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        deployment: str | None = None,
        request_id: str | None = None,
    ) -> None:
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.model = model
        self.deployment = deployment
        self.request_id = request_id
        self.attempts: list[Attempt] = []
        """Attempts made before this error surfaced (filled in by the executor)."""

    def _fields(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "model": self.model,
            "deployment": self.deployment,
            "request_id": self.request_id,
        }

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructors do not pickle by default; errors cross process boundaries (workers, queues).
        return (_rebuild, (type(self), self.message, self._fields()))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view: ``code``, ``message`` and every known field."""
        out: dict[str, Any] = {"code": self.code, "type": type(self).__name__, "message": self.message}
        out.update({k: v for k, v in self._fields().items() if v is not None})
        return out

    def __str__(self) -> str:
        where = self.deployment or self.model
        return f"{self.message} [{self.code}{', ' + where if where else ''}]"


def _rebuild(cls: type[LLMManagerError], message: str, fields: dict[str, Any]) -> LLMManagerError:
    return cls(message, **fields)


class ConfigError(LLMManagerError):
    """The configuration or the call itself is invalid; fix it and try again."""

    code = "config_error"


class UnsupportedContentError(ConfigError):
    """No candidate deployment accepts content the request carries (an image for text-only models …)."""

    code = "unsupported_content"

    def __init__(self, message: str, *, modalities: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.modalities = list(modalities)
        """The input modalities the request needs that no candidate takes."""

    def _fields(self) -> dict[str, Any]:
        return {**super()._fields(), "modalities": self.modalities}


class ProviderError(LLMManagerError):
    """A provider (or the way to it) failed."""

    code = "provider_error"

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        body: str | None = None,
        retry_after: float | None = None,
        headers: Mapping[str, str] | None = None,
        provider: str | None = None,
        model: str | None = None,
        deployment: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, provider=provider, model=model, deployment=deployment, request_id=request_id)
        self.status_code = status_code
        self.body = redact(body) if body else body
        self.retry_after = retry_after
        """Seconds the provider asked us to wait, from ``retry-after-ms`` / ``retry-after``."""
        self.headers = dict(headers) if headers else {}

    def _fields(self) -> dict[str, Any]:
        return {
            **super()._fields(),
            "status_code": self.status_code,
            "body": self.body,
            "retry_after": self.retry_after,
            "headers": self.headers or None,
        }


class ModelUnavailableError(ProviderError):
    """The provider is down, overloaded (5xx) or unreachable (refused, reset)."""

    code = "model_unavailable"


class StreamInterruptedError(ModelUnavailableError):
    """A stream broke (reset, truncated, malformed) after it had started."""

    code = "stream_interrupted"


class ProviderTimeoutError(ProviderError):
    """No answer (or no first streamed chunk) within the allowed time."""

    code = "timeout"

    def __init__(self, message: str, *, timeout_s: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.timeout_s = timeout_s

    def _fields(self) -> dict[str, Any]:
        return {**super()._fields(), "timeout_s": self.timeout_s}


class RateLimitError(ProviderError):
    """The provider (or a local limit) refused for now; ``retry_after`` says when to come back."""

    code = "rate_limited"


class AuthenticationError(ProviderError):
    """The API key is missing, wrong or not allowed to use this model."""

    code = "authentication_failed"


class InvalidRequestError(ProviderError):
    """The provider rejected the request as malformed; retrying the same request cannot help."""

    code = "invalid_request"


class ContextTooLargeError(ProviderError):
    """The prompt (plus requested output) does not fit the model's context window."""

    code = "context_too_large"

    def __init__(
        self, message: str, *, token_count: int | None = None, max_tokens: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.token_count = token_count
        """Tokens the request needed (estimated when the provider did not say)."""
        self.max_tokens = max_tokens
        """The context window that was too small."""

    def _fields(self) -> dict[str, Any]:
        return {**super()._fields(), "token_count": self.token_count, "max_tokens": self.max_tokens}


class ContentFilterError(ProviderError):
    """The provider's safety filter refused the prompt or the completion."""

    code = "content_filtered"


class ExtractionError(LLMManagerError):
    """Structured output could not be validated, even after re-asking."""

    code = "extraction_failed"

    def __init__(
        self,
        message: str,
        *,
        response: str | None = None,
        tries: Sequence[Mapping[str, Any]] = (),
        usage: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.response = response
        """The last raw reply."""
        self.tries = [dict(t) for t in tries]
        """Every ask and re-ask: ``{"reply", "errors", "deployment", "request_id"}``."""
        self.usage = usage
        """Tokens (and cost) spent on all the tries together (a :class:`~llm_manager.types.Usage`)."""

    def _fields(self) -> dict[str, Any]:
        return {**super()._fields(), "response": self.response, "tries": self.tries, "usage": self.usage}

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if self.usage is not None:
            out["usage"] = self.usage.model_dump(mode="json")
        return out


class ConversationNotFoundError(LLMManagerError, LookupError):
    """No conversation has this id (never created, or deleted). The store and the manager raise this one class."""

    code = "conversation_not_found"

    def __init__(self, message: str, *, conversation_id: str | None = None, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.conversation_id = conversation_id

    @classmethod
    def of(cls, conversation_id: str) -> ConversationNotFoundError:
        """The error for an unknown ``conversation_id``."""
        return cls(f"no conversation {conversation_id!r}", conversation_id=conversation_id)

    def _fields(self) -> dict[str, Any]:
        return {**super()._fields(), "conversation_id": self.conversation_id}


class BudgetExceededError(LLMManagerError):
    """A hard budget would be exceeded; no provider was called."""

    code = "budget_exceeded"

    def __init__(
        self,
        message: str,
        *,
        budget: str | None = None,
        scope: str | None = None,
        scope_value: str | None = None,
        limit_usd: Any = None,
        spent_usd: Any = None,
        resets_at: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.budget = budget
        self.scope = scope
        self.scope_value = scope_value
        self.limit_usd = limit_usd
        """The hard limit (``Decimal``)."""
        self.spent_usd = spent_usd
        """Spent plus reserved in the current period (``Decimal``)."""
        self.resets_at = resets_at
        """ISO time the period ends (``None`` for a total budget)."""

    def _fields(self) -> dict[str, Any]:
        return {
            **super()._fields(),
            "budget": self.budget,
            "scope": self.scope,
            "scope_value": self.scope_value,
            "limit_usd": self.limit_usd,
            "spent_usd": self.spent_usd,
            "resets_at": self.resets_at,
        }

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        for k in ("limit_usd", "spent_usd"):
            if out.get(k) is not None:
                out[k] = str(out[k])
        return out


class CircuitOpenError(LLMManagerError):
    """Every candidate's circuit breaker is open; nothing was called. ``retry_after``: when probes resume."""

    code = "circuit_open"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after

    def _fields(self) -> dict[str, Any]:
        return {**super()._fields(), "retry_after": self.retry_after}


class StateUnavailableError(LLMManagerError):
    """The shared state (Redis) did not answer in time and ``state.on_unavailable`` is ``fail_closed``: limits,
    breakers and budgets cannot be checked, so nothing was called. ``retry_after``: when it is worth trying again
    (this replica, once Redis is back, or another one)."""

    code = "state_unavailable"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after

    def _fields(self) -> dict[str, Any]:
        return {**super()._fields(), "retry_after": self.retry_after}


class AllCandidatesFailedError(LLMManagerError):
    """Every candidate deployment failed. ``attempts`` lists each try in order, with its error."""

    code = "all_candidates_failed"

    def __init__(
        self,
        message: str,
        *,
        attempts: Sequence[Attempt] = (),
        exceptions: Sequence[BaseException] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.attempts = list(attempts)
        self.exceptions = list(exceptions)

    def _fields(self) -> dict[str, Any]:
        return {**super()._fields(), "attempts": self.attempts, "exceptions": self.exceptions}

    @property
    def last(self) -> BaseException | None:
        """The error of the final attempt (what a caller usually reports)."""
        return self.exceptions[-1] if self.exceptions else None

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.pop("exceptions", None)
        out["attempts"] = [a.model_dump(mode="json") for a in self.attempts]
        return out
