"""Wire protocols, one module per protocol, used in both directions.

A codec knows one wire format (OpenAI Chat Completions, OpenAI Responses, Anthropic Messages, Gemini
generateContent, OpenAI embeddings, Gemini embeddings): it decodes and encodes requests, responses and stream
events, with the wire shapes as typed models. The gateway decodes what clients send with it (ingress) and the
provider adapters encode what upstreams receive with it (egress), so a wire format is known in one place.

Codecs import only ``llm_manager.types``, ``llm_manager.errors`` and each other: no HTTP, no routing.
"""
