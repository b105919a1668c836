"""Wire protocols, one codec per protocol, used in both directions.

A codec knows one wire format (OpenAI Chat Completions, OpenAI Responses, Anthropic Messages, Gemini
generateContent, OpenAI embeddings, Gemini embeddings): it decodes and encodes requests, responses and stream
events, with the wire shapes as typed models. The gateway decodes what clients send with it (ingress) and the
provider adapters encode what upstreams receive with it (egress), so a wire format is known in one place.

A small codec is one module (``openai_embeddings.py``); a large one is a package split by message kind
(``openai_chat/``: ``request.py``, ``response.py``, ``stream.py``, ``errors.py``, ``tools.py``). What every codec
shares is in :mod:`llm_manager.codecs.base`.

Codecs import only ``llm_manager.types`` (and ``.embedding``), ``llm_manager.errors``, ``llm_manager.profiles``, the sans-IO helpers
(``_json``, ``_sse``), the structured-output schema helpers and each other: no HTTP, no routing, no store, no gateway
(``tests/test_package.py`` checks it). This file imports nothing, so codecs can be added without touching it.
"""
