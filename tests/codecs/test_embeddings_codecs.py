"""The embedding codecs on their own: what a client may send, what an upstream may answer, float32 exactness."""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_manager.codecs import gemini_embeddings as gcodec
from llm_manager.codecs import openai_embeddings as ocodec
from llm_manager.codecs._float32 import VectorError, as_float32, pack_base64, unpack_base64
from llm_manager.embedding import EmbedCall
from tests.fakes import embeddings_wire as wire

float32s = st.floats(width=32, allow_nan=False, allow_infinity=False)


@given(st.lists(float32s, min_size=1, max_size=64))
def test_base64_round_trip_is_exact(values: list[float]) -> None:
    text = pack_base64(values)
    assert unpack_base64(text) == values
    assert text == wire.vectors_b64(values)  # little-endian float32, as OpenAI encodes it


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e30, max_value=1e30), min_size=1))
def test_numbers_are_rounded_to_float32_once(values: list[float]) -> None:
    once = as_float32(values)
    assert once == [struct.unpack("<f", struct.pack("<f", v))[0] for v in values]
    assert as_float32(once) == once
    assert unpack_base64(pack_base64(once)) == once


@pytest.mark.parametrize("bad", [[], "x", None, [1.0, "2"], [True, 1.0], [float("nan")], [1e300], {"a": 1}])
def test_bad_vectors_are_refused(bad: Any) -> None:
    with pytest.raises(VectorError):
        as_float32(bad)


@pytest.mark.parametrize("bad", ["", "not base64!", "AAA=", 5])
def test_bad_base64_is_refused(bad: Any) -> None:
    with pytest.raises(VectorError):
        unpack_base64(bad)


# -- OpenAI ingress ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "field", "value"),
    [
        ("hello", "texts", ["hello"]),
        (["a", "b"], "texts", ["a", "b"]),
        ([1, 2, 3], "tokens", [[1, 2, 3]]),
        ([[1, 2], [3]], "tokens", [[1, 2], [3]]),
    ],
)
def test_decode_request_inputs(raw: Any, field: str, value: Any) -> None:
    req, fields = ocodec.decode_request({"model": "m", "input": raw, "dimensions": 64, "user": "u"})
    assert fields == {field: value, "dimensions": 64, "user": "u"}
    assert req.encoding_format == "float"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m", "input": ""}, "input"),
        ({"model": "m", "input": ["a", ""]}, "input[1]"),
        ({"model": "m", "input": []}, "input"),
        ({"model": "m", "input": ["a", 1]}, "input[0]"),
        ({"model": "m", "input": [[1], []]}, "input[1]"),
        ({"model": "m", "input": [[1], [-2]]}, "input[1]"),
        ({"model": "m", "input": [True]}, "input[0]"),
        ({"model": "m", "input": 3}, "input"),
        ({"model": "m"}, "input"),
        ({"input": "a"}, "model"),
        ({"model": "m", "input": "a", "dimensions": True}, "dimensions"),
        ({"model": "m", "input": "a", "dimensions": 0}, "dimensions"),
        ({"model": "m", "input": "a", "encoding_format": "int8"}, "encoding_format"),
        ({"model": "m", "input": "a", "input_type": "poetry"}, "input_type"),
        ({"model": 5, "input": "a"}, "model"),
    ],
)
def test_decode_request_names_the_bad_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(ocodec.DecodeError) as info:
        ocodec.decode_request(body)
    assert info.value.param == param
    assert param.split("[")[0] in info.value.message


def test_unknown_fields_are_listed_not_dropped_silently() -> None:
    assert ocodec.unknown_fields({"model": "m", "input": "a", "truncate": "END", "extra": 1}) == ["extra", "truncate"]


# -- OpenAI egress -------------------------------------------------------------------------------------------------


def test_encode_request_only_sends_what_is_set() -> None:
    assert ocodec.encode_request("m", EmbedCall(["a"])) == {"model": "m", "input": ["a"], "encoding_format": "base64"}


def test_decode_response_orders_by_index_and_reads_both_encodings() -> None:
    vecs = [wire.vector(i, 6) for i in range(3)]
    for b64 in (False, True):
        body = json.dumps(wire.openai_list(vecs, b64=b64, order=[2, 0, 1], prompt_tokens=9, model="m-1")).encode()
        got = ocodec.decode_response(body, 3)
        assert (got.vectors, got.prompt_tokens, got.model) == (vecs, 9, "m-1")


@pytest.mark.parametrize(
    ("payload", "expected", "why"),
    [
        (b"<html>", 1, "not JSON"),
        ({"data": "x"}, 1, "no data"),
        ({"data": [{"index": 0, "embedding": [1.0]}]}, 2, "no vector for input"),
        ({"data": [{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [1.0]}]}, 2, "two vectors"),
        ({"data": [{"index": 5, "embedding": [1.0]}]}, 1, "not one of"),
        ({"data": [{"index": 0, "embedding": [1.0]}, {"index": 1, "embedding": [1.0, 2.0]}]}, 2, "different sizes"),
        ({"data": [{"index": 0, "embedding": "%%"}]}, 1, "base64"),
        ({"data": [{"index": 0, "embedding": ["x"]}]}, 1, "numbers"),
    ],
)
def test_decode_response_refuses_broken_answers(payload: Any, expected: int, why: str) -> None:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    with pytest.raises(ocodec.DecodeError, match=why):
        ocodec.decode_response(body, expected)


def test_usage_is_optional_in_answers() -> None:
    got = ocodec.decode_response(json.dumps({"data": [{"index": 0, "embedding": [0.5]}]}).encode(), 1)
    assert got.prompt_tokens is None and got.model is None


# -- Gemini --------------------------------------------------------------------------------------------------------


def test_gemini_request_fields() -> None:
    body = gcodec.encode_request("models/text-embedding-004", EmbedCall(["x"], input_type="document", dimensions=64))
    assert body == {
        "requests": [
            {
                "model": "models/text-embedding-004",
                "content": {"parts": [{"text": "x"}], "role": "user"},
                "taskType": "RETRIEVAL_DOCUMENT",
                "outputDimensionality": 64,
            }
        ]
    }


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ({"embeddings": [{"values": [1.0]}]}, "1 embeddings for 2"),
        ({"embeddings": [{"values": [1.0]}, {"values": []}]}, "embeddings\\[1\\]"),
        ({"embeddings": [{"values": [1.0]}, {"values": [1.0, 2.0]}]}, "different sizes"),
        ({"nothing": 1}, "no embeddings"),
    ],
)
def test_gemini_decode_refuses_broken_answers(payload: Any, why: str) -> None:
    with pytest.raises(gcodec.DecodeError, match=why):
        gcodec.decode_response(json.dumps(payload).encode(), 2)


def test_gemini_batch_must_share_task_and_size() -> None:
    body = {
        "requests": [
            {"model": "models/m", "content": {"parts": [{"text": "a"}]}, "taskType": "RETRIEVAL_QUERY"},
            {"model": "models/m", "content": {"parts": [{"text": "b"}]}, "taskType": "CLUSTERING"},
        ]
    }
    with pytest.raises(gcodec.DecodeError, match="same taskType"):
        gcodec.decode_request(body, batch=True)
    with pytest.raises(gcodec.DecodeError, match="content"):
        gcodec.decode_request({"model": "models/m"}, batch=False)


def test_float32_values_are_finite() -> None:
    assert all(math.isfinite(v) for v in as_float32([3.4e38, -3.4e38]))
