"""The simulated embedding model: deterministic vectors, offline, with the simulated provider's scripted failures.

A vector is the hashed bag of the text's words and character trigrams (feature hashing), signed, normalised to
length 1 and rounded to float32. So the same text always gets the same vector (for a given ``simulation.seed`` and
model id), texts sharing words or spellings point in similar directions (cosine similarity well above that of
unrelated texts), and two model ids give unrelated vectors, as two real models would. It is no language model:
paraphrases with no words in common are not close.
"""

from __future__ import annotations

import asyncio
import math
import re
import zlib
from array import array
from collections import deque
from typing import TYPE_CHECKING, ClassVar

from llm_manager.embedding import EmbedCall, Embedded
from llm_manager.providers.embedding_base import EmbeddingAdapter
from llm_manager.providers.simulated import SimulatedAdapter

if TYPE_CHECKING:
    from llm_manager._http import HttpClient
    from llm_manager.providers.base import Endpoint

__all__ = ["SimulatedEmbeddingsAdapter", "simulated_vector"]

_WORD = re.compile(r"\w+")
_TRIGRAM_WEIGHT = 0.5
_MIXES = tuple(k * 0x9E37_79B1 & 0xFFFF_FFFF for k in range(4))
_DEFAULT_SIZE = 256
"""Vector size when the caller names none (the manager always does: from the deployment's ``dimensions``)."""


def simulated_vector(text: str, size: int, salt: int) -> list[float]:
    """The unit vector of ``text`` with ``size`` dimensions; ``salt`` (from the seed and model) picks the space."""
    acc: dict[int, float] = {}  # only the dimensions a feature lands on: a short text touches few of them
    low = text.lower()
    padded = f" {low} "
    features = [(w, 1.0) for w in _WORD.findall(low) or [low]]
    features += [(padded[i : i + 3], _TRIGRAM_WEIGHT) for i in range(len(padded) - 2)]
    crc32, get = zlib.crc32, acc.get
    for feature, weight in features:
        h = crc32(feature.encode(), salt)
        # Each feature lands on a few dimensions (mixed from its one hash): denser vectors, same similarities.
        for mix in _MIXES:
            hk = ((h ^ mix) * 0x85EB_CA6B) & 0xFFFF_FFFF
            i = hk % size
            acc[i] = get(i, 0.0) + (weight if hk & 0x8000_0000 else -weight)
    scale = 1.0 / (math.hypot(*acc.values()) or 1.0)
    out = array("f", bytes(4 * size))  # zeros
    for i, v in acc.items():
        out[i] = v * scale
    return out.tolist()


class SimulatedEmbeddingsAdapter(EmbeddingAdapter, SimulatedAdapter):
    """An offline embedding model. Its latency and failures come from ``models.<name>.simulate`` in config
    (``script`` outcomes such as ``429`` and ``500`` apply to its calls like to a chat model's)."""

    kind: ClassVar[str] = "simulated"
    simulated: ClassVar[bool] = True

    def __init__(self, endpoint: Endpoint, http: HttpClient) -> None:
        super().__init__(endpoint, http)
        self.calls_received: deque[EmbedCall] = deque(maxlen=100)
        """The most recent calls (tests inspect what reached the model)."""
        self._salt = zlib.crc32(f"{endpoint.seed}:{endpoint.model}".encode())

    async def send(self, call: EmbedCall, *, api_key: str | None) -> Embedded:  # noqa: ARG002
        """Vectors after ``latency_ms`` (or the scripted failure)."""
        self.calls_received.append(call)
        outcome = self._next_outcome()
        if outcome == "timeout":
            await asyncio.sleep(3600)  # the caller's deadline ends this
        err = self._fail(outcome)
        if err is not None:
            await self._sleep(self.behaviour.first_token_ms)
            raise err
        delay = float(outcome.partition(":")[2]) * 1000 if outcome.startswith("slow:") else self.behaviour.latency_ms
        await self._sleep(delay)
        size = call.dimensions or call.size or _DEFAULT_SIZE
        texts = call.texts if call.tokens is None else [" ".join(map(str, t)) for t in call.tokens]
        return Embedded(
            vectors=[simulated_vector(t, size, self._salt) for t in texts],
            prompt_tokens=sum(len(t) // 4 + 1 for t in texts),
            model=self.endpoint.model,
        )

    async def probe(self, *, api_key: str | None) -> None:  # noqa: ARG002
        """Always reachable: it lives in this process."""
        return None
