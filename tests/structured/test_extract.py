"""Extraction of structured output from real-world replies: fences, prose, several candidates, malformed JSON."""

from __future__ import annotations

import json
import pickle
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, TypeAdapter

from llm_manager.errors import ConfigError
from llm_manager.structured import (
    ExtractionFailed,
    candidates,
    extract,
    instruction,
    reask_message,
    schema_of,
    strict_schema,
)

# -- models ---------------------------------------------------------------------------------------------------------


class Inner(BaseModel):
    label: str
    weight: float


class Record(BaseModel):
    name: str
    count: int
    ratio: float
    active: bool
    tags: list[str]
    inner: Inner
    note: str | None = None


class Incident(BaseModel):
    severity: str
    service: str
    error: str


class ServiceError(BaseModel):
    service: str
    code: int


class LooseInner(BaseModel):
    label: str | None = None
    weight: float | None = None


class Loose(BaseModel):
    """All fields optional: almost any object validates, which is what makes truncation interesting."""

    name: str | None = None
    count: int | None = None
    tags: list[str] | None = None
    inner: LooseInner | None = None
    summary: str | None = None


# -- the issue's examples -------------------------------------------------------------------------------------------


def test_seed_truncated_array_is_closed() -> None:
    got = extract('{"status": "success", "data": [1, 2,', {"type": "object"})
    assert got.value == {"status": "success", "data": [1, 2]}
    assert got.repaired


def test_seed_fenced_block_after_prose() -> None:
    text = 'Here\'s the analysis:\n```json\n{"severity": "high", "service": "api-gateway", "error": "timeout"}\n```'
    got = extract(text, Incident)
    assert got.value == Incident(severity="high", service="api-gateway", error="timeout")
    assert not got.repaired


def test_seed_json_inside_prose() -> None:
    got = extract('The error occurred in {"service": "auth", "code": 500}', ServiceError)
    assert got.value == ServiceError(service="auth", code=500)
    assert got.raw == {"service": "auth", "code": 500}


# -- where the JSON sits --------------------------------------------------------------------------------------------

OBJ: dict[str, Any] = {"service": "auth", "code": 500}


@pytest.mark.parametrize(
    "text",
    [
        '{"service": "auth", "code": 500}',
        '  \n{"service": "auth", "code": 500}\n',
        '```json\n{"service": "auth", "code": 500}\n```',
        '```JSON\n{"service": "auth", "code": 500}\n```\nAnything else?',
        '```\n{"service": "auth", "code": 500}\n```',
        'Sure! ```json\n{"service": "auth", "code": 500}\n```',
        '~~~json\n{"service": "auth", "code": 500}\n~~~',
        'Result: {"service": "auth", "code": 500}. Let me know if you need more.',
        'I think (see [1]) the answer is {"service": "auth", "code": 500} because of [2].',
        '```json\n{"service": "auth", "code": 500}',  # the closing fence never came
        '```json\n{"service": "auth", "code": 500}```',
    ],
    ids=lambda t: t[:30],
)
def test_fenced_bare_and_prose_wrapped(text: str) -> None:
    assert extract(text, ServiceError).value == ServiceError(**OBJ)


def test_json_fence_wins_over_other_fences_and_prose_objects() -> None:
    text = (
        'Example: {"service": "example", "code": 1}\n'
        '```python\nprint({"service": "py", "code": 2})\n```\n'
        '```json\n{"service": "auth", "code": 500}\n```'
    )
    assert candidates(text)[0] == OBJ
    assert extract(text, ServiceError).value.service == "auth"


def test_several_candidates_only_the_second_validates() -> None:
    text = 'First try: {"service": "auth"} and then the full one: {"service": "auth", "code": 500}'
    got = extract(text, ServiceError)
    assert got.value == ServiceError(**OBJ)
    assert candidates(text)[:2] == [{"service": "auth", "code": 500}, {"service": "auth"}]  # longest span first


def test_several_fences_only_the_second_validates() -> None:
    text = '```json\n{"service": 7}\n```\nOops, corrected:\n```json\n{"service": "auth", "code": 500}\n```'
    assert extract(text, ServiceError).value == ServiceError(**OBJ)


def test_nested_fences() -> None:
    text = (
        '````markdown\nHere is how I would answer:\n```json\n{"service": "auth", "code": 500}\n```\nThat\'s all.\n````'
    )
    assert extract(text, ServiceError).value == ServiceError(**OBJ)
    assert candidates(text)[0] == OBJ


def test_fence_markers_inside_json_strings_do_not_close_the_fence() -> None:
    value = {"service": "snippet ```py\nprint(1)\n``` end", "code": 1}
    text = f"```json\n{json.dumps(value)}\n```"
    assert extract(text, ServiceError).raw == value


def test_escaped_quotes_and_braces_inside_strings() -> None:
    value = {"service": 'a } b ] c \\" { [ "quoted" \\', "code": 3}
    text = f"Here: {json.dumps(value)} and a stray }} and ] after."
    got = extract(text, ServiceError)
    assert got.raw == value
    assert not got.repaired


def test_top_level_array() -> None:
    text = 'The incidents:\n[{"service": "a", "code": 1}, {"service": "b", "code": 2}]\nDone.'
    got = extract(text, TypeAdapter(list[ServiceError]))
    assert got.value == [ServiceError(service="a", code=1), ServiceError(service="b", code=2)]
    assert extract(text, {"type": "array", "items": {"type": "object"}}).value[1]["service"] == "b"


def test_scalar_targets_accept_a_bare_scalar_reply() -> None:
    assert extract("42", TypeAdapter(int)).value == 42
    assert extract('```json\n"ok"\n```', TypeAdapter(str)).value == "ok"


# -- malformed JSON -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"service": "auth", "code": 500,}',
        '{"service": "auth", "code": 500, }',
        "{'service': 'auth', 'code': 500}",
        "{service: 'auth', code: 500}",
        '{"service": "auth", "code": 500',
        'Answer: {"service": "auth", "code": 500, "extra": [1, 2,',
        '```json\n{"service": "auth", "code": 500,}\n```',
    ],
)
def test_malformed_json_is_repaired(text: str) -> None:
    got = extract(text, ServiceError)
    assert got.value == ServiceError(**OBJ)
    assert got.repaired


def test_python_literals_are_repaired() -> None:
    got = extract("{'name': 'x', 'count': None, 'tags': ['a'], 'inner': None, 'summary': True}", {"type": "object"})
    assert got.value["count"] is None and got.value["summary"] is True


def test_trailing_commas_in_nested_arrays() -> None:
    text = '{"name": "n", "count": 1, "ratio": 0.5, "active": true, "tags": ["a", "b",], "inner": {"label": "l", "weight": 2,},}'
    assert extract(text, Record).value.tags == ["a", "b"]


def test_prose_never_repairs_into_a_scalar_candidate() -> None:
    assert candidates("I cannot help with that.") == []
    assert candidates("") == []
    with pytest.raises(ExtractionFailed) as info:
        extract("I cannot help with that.", ServiceError)
    assert info.value.candidates_tried == 0
    assert info.value.best is None
    assert info.value.errors == ["(root): the reply contains no JSON value"]


def test_strict_candidates_come_before_repairs_and_are_not_repaired_twice() -> None:
    text = '{"service": "auth", "code": 500} and {"service": "x", "code": 1,'
    values = candidates(text)
    assert values[0] == OBJ
    assert values.count(OBJ) == 1


def _consistent(partial: Any, full: Any) -> bool:
    """``partial`` could be what a prefix of ``full``'s JSON said: earlier members equal, the last one a prefix."""
    if isinstance(full, dict):
        keys = list(partial)
        if not isinstance(partial, dict) or any(k not in full for k in keys):
            return False
        return all(partial[k] == full[k] for k in keys[:-1]) and (
            not keys or _consistent(partial[keys[-1]], full[keys[-1]])
        )
    if isinstance(full, list):
        if not isinstance(partial, list) or len(partial) > len(full):
            return False
        if not partial:
            return True
        last = len(partial) - 1
        return partial[:last] == full[:last] and _consistent(partial[last], full[last])
    if isinstance(full, str):
        return isinstance(partial, str) and full.startswith(partial)
    if isinstance(full, bool | None):
        return bool(partial == full)
    return isinstance(partial, int | float)  # a number cut short reads as another number


def test_truncated_at_every_position_is_prefix_consistent() -> None:
    full = {
        "name": "Ada Lovelace",
        "count": 12345,
        "tags": ["alpha", "beta, gamma", "{not a brace}"],
        "inner": {"label": "deep [nested]", "weight": 2.75},
        "summary": "The end.",
    }
    doc = json.dumps(full)
    first_value = doc.index(":") + 2
    validated = 0
    for cut in range(first_value, len(doc) + 1):
        try:
            got = extract(doc[:cut], Loose)
        except ExtractionFailed:
            continue
        validated += 1
        seen = got.value.model_dump(exclude_unset=True)
        assert _consistent(seen, full), (cut, doc[:cut], seen)
    # Nearly every cut yields a usable object; the rest (inside "true"-like literals, keys) just fail cleanly.
    assert validated >= 0.9 * (len(doc) + 1 - first_value)
    assert extract(doc, Loose).value.model_dump() == full


# -- unwrapping and rescues -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"result": {"service": "auth", "code": 500}}',
        '{"ServiceError": {"service": "auth", "code": 500}}',
        '[{"service": "auth", "code": 500}]',
        '```json\n{"data": {"service": "auth", "code": 500}}\n```',
    ],
)
def test_unwrap_a_single_wrapper(text: str) -> None:
    got = extract(text, ServiceError)
    assert got.value == ServiceError(**OBJ)
    assert got.repaired


def test_unwrap_only_after_direct_candidates_fail() -> None:
    # The wrapper itself validates against an all-optional model, and a later direct candidate would too.
    got = extract('{"result": {"name": "inner"}}', Loose)
    assert got.raw == {"result": {"name": "inner"}}
    text = '{"result": {"service": "wrapped", "code": 1}} then {"service": "direct", "code": 2}'
    assert extract(text, ServiceError).value.service == "direct"


def test_no_unwrap_when_the_key_is_a_real_field() -> None:
    class Holder(BaseModel):
        inner: Inner
        extra: int

    with pytest.raises(ExtractionFailed) as info:
        extract('{"inner": {"label": "x", "weight": 1}}', Holder)
    assert info.value.errors == ["extra: Field required"]


def test_unwrap_applies_to_object_schemas_but_not_type_adapters() -> None:
    schema = {"type": "object", "properties": {"code": {"type": "integer"}}, "required": ["code"]}
    assert extract('{"answer": {"code": 1}}', schema).value == {"code": 1}
    with pytest.raises(ExtractionFailed):
        extract('{"result": {"service": "auth", "code": 500}}', TypeAdapter(ServiceError))


def test_nulls_for_fields_with_defaults_are_dropped() -> None:
    # OpenAI strict mode sends null for "not given"; a non-nullable field with a default rejects it.
    class WithDefaults(BaseModel):
        service: str
        code: int = 200
        tags: list[str] = Field(default_factory=list)

    got = extract('{"service": "auth", "code": null, "tags": null}', WithDefaults)
    assert got.value == WithDefaults(service="auth")
    assert got.raw == {"service": "auth"}
    assert got.repaired


# -- failures -------------------------------------------------------------------------------------------------------


def test_failure_names_field_paths_of_the_best_candidate() -> None:
    bad = {
        "name": "n",
        "count": "many",
        "ratio": 0.5,
        "active": True,
        "tags": ["a", 5],
        "inner": {"label": "l"},
    }
    text = f'See [1]. {json.dumps(bad)} and {{"name": 1}}'
    with pytest.raises(ExtractionFailed) as info:
        extract(text, Record)
    failed = info.value
    assert failed.best == bad
    assert failed.errors == [
        "count: Input should be a valid integer, unable to parse string as an integer (got 'many')",
        "tags[1]: Input should be a valid string (got 5)",
        "inner.weight: Field required",
    ]
    assert failed.candidates_tried >= 3
    assert "count: Input should be a valid integer" in str(failed)


def test_failure_prefers_a_candidate_of_the_right_shape() -> None:
    with pytest.raises(ExtractionFailed) as info:
        extract('Per [1], {"service": 1, "code": "x", "other": 3}', ServiceError)
    assert info.value.best == {"service": 1, "code": "x", "other": 3}


def test_failure_pickles_with_its_fields() -> None:
    failed = ExtractionFailed(["a: b"], candidates_tried=2, best={"a": 1})
    again = pickle.loads(pickle.dumps(failed))
    assert (again.errors, again.candidates_tried, again.best) == (["a: b"], 2, {"a": 1})


def test_json_schema_target_errors_name_paths() -> None:
    schema = {
        "type": "object",
        "properties": {
            "service": {"type": "string"},
            "items": {
                "type": "array",
                "items": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
            },
        },
        "required": ["service", "items"],
    }
    with pytest.raises(ExtractionFailed) as info:
        extract('{"service": 5, "items": [{"n": 1}, {"m": 2}, {"n": "x"}]}', schema)
    assert info.value.errors == [
        "items[1].n: Field required",
        "items[2].n: 'x' is not of type 'integer'",
        "service: 5 is not of type 'string'",
    ]
    assert extract('{"service": "a", "items": []}', schema).value == {"service": "a", "items": []}


def test_invalid_targets_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        extract("{}", {"type": 12})
    with pytest.raises(ConfigError):
        extract("{}", int)  # type: ignore[type-var]
    with pytest.raises(ConfigError):
        schema_of("nope")


# -- schemas and prompts --------------------------------------------------------------------------------------------


def test_schema_of() -> None:
    assert schema_of(ServiceError)["required"] == ["service", "code"]
    assert schema_of(TypeAdapter(list[int])) == {"type": "array", "items": {"type": "integer"}}
    original: dict[str, Any] = {"type": "object", "properties": {"a": {"type": "string"}}}
    copied = schema_of(original)
    copied["properties"]["a"]["type"] = "integer"
    assert original["properties"]["a"]["type"] == "string"


def test_strict_schema_for_a_model_with_defs_and_optionals() -> None:
    class Item(BaseModel):
        label: str = Field(min_length=1, max_length=20)
        size: int = 3

    class Order(BaseModel):
        items: list[Item] = Field(max_length=5)
        main: Item
        backup: Item | None = None
        code: str = Field(default="x", json_schema_extra={"format": "custom"})

    schema = schema_of(Order)
    strict = strict_schema(schema)
    assert schema == schema_of(Order)  # the input is not mutated
    assert strict["additionalProperties"] is False
    assert strict["required"] == ["items", "main", "backup", "code"]
    item = strict["$defs"]["Item"]
    assert item["additionalProperties"] is False
    assert item["required"] == ["label", "size"]
    assert item["properties"]["size"] == {
        "anyOf": [{"type": "integer", "title": "Size", "description": "default: 3"}, {"type": "null"}]
    }
    assert item["properties"]["label"]["description"] == "minLength: 1; maxLength: 20"
    assert "minLength" not in item["properties"]["label"]
    assert strict["properties"]["items"]["maxItems"] == 5  # allowed by strict mode, kept; required, so not nullable
    # backup was already nullable: not wrapped again, and its null default is simply dropped
    assert strict["properties"]["backup"] == {"anyOf": [{"$ref": "#/$defs/Item"}, {"type": "null"}]}
    code = strict["properties"]["code"]["anyOf"][0]
    assert "format" not in code and "default" not in code
    assert code["description"] == 'default: "x"; format: custom'
    assert "default" not in json.dumps(strict).replace('"default: ', "")


def test_strict_schema_rewrites_unions_refs_and_maps() -> None:
    schema = {
        "type": "object",
        "properties": {
            "pick": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
            "ref": {"$ref": "#/$defs/Thing", "description": "a thing"},
            "merged": {"allOf": [{"$ref": "#/$defs/Thing"}]},
            "when": {"type": "string", "format": "date-time"},
            "bag": {"type": "object", "additionalProperties": {"type": "integer"}},
        },
        "required": ["pick", "ref", "merged", "when", "bag"],
        "$defs": {"Thing": {"type": "object", "properties": {"x": {"type": "integer"}}}},
        "$schema": "https://json-schema.org/draft/2020-12/schema",
    }
    strict = strict_schema(schema)
    assert "$schema" not in strict
    assert strict["properties"]["pick"] == {"anyOf": [{"type": "string"}, {"type": "integer"}]}
    assert strict["properties"]["ref"] == {"anyOf": [{"$ref": "#/$defs/Thing"}], "description": "a thing"}
    assert strict["properties"]["merged"] == {"$ref": "#/$defs/Thing"}
    assert strict["properties"]["when"] == {"type": "string", "format": "date-time"}
    assert strict["properties"]["bag"] == {
        "type": "object",
        "additionalProperties": False,
        "properties": {},
        "required": [],
    }
    thing = strict["$defs"]["Thing"]
    assert thing["required"] == ["x"]
    assert thing["properties"]["x"] == {"anyOf": [{"type": "integer"}, {"type": "null"}]}


def test_strict_schema_output_validates_through_extract() -> None:
    # What a strict-mode model sends for Record (nulls for the optional field) validates against Record.
    reply = {
        "name": "n",
        "count": 1,
        "ratio": 1.5,
        "active": False,
        "tags": [],
        "inner": {"label": "l", "weight": 0},
        "note": None,
    }
    assert extract(json.dumps(reply), Record).value.note is None


def test_instruction_and_reask_message() -> None:
    text = instruction(schema_of(ServiceError))
    assert '"required":["service","code"]' in text
    assert "only a JSON" in text and "code fences" in text
    errors = ["code: Field required", "service: Input should be a valid string (got 5)"]
    msg = reask_message('{"service": 5}', errors)
    assert "- code: Field required\n- service: Input should be a valid string (got 5)" in msg
    assert "does not match the schema" in msg and "only the corrected JSON" in msg
    assert "cut off" in reask_message('{"service": "a", "code": ', errors)
    assert "no JSON" in reask_message("Sorry, I can't.", ["(root): the reply contains no JSON value"])


# -- properties -----------------------------------------------------------------------------------------------------

_TEXT = st.text(max_size=20)
_FLOATS = st.floats(allow_nan=False, allow_infinity=False)
RECORDS = st.builds(
    Record,
    name=_TEXT,
    count=st.integers(),  # beyond 64 bits too: orjson would turn those into floats
    ratio=_FLOATS,
    active=st.booleans(),
    tags=st.lists(_TEXT, max_size=4),
    inner=st.builds(Inner, label=_TEXT, weight=_FLOATS),
    note=st.none() | _TEXT,
)
PROSE_BEFORE = st.sampled_from(["", "Here's the result:", "Sure! (see [1])", "Answer —", "I'd say: {not json} ->"])
PROSE_AFTER = st.sampled_from(["", "Hope that helps!", "Note: it's approximate [2].", "Let me know.\n"])
_PROP = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _dump(record: Record, ascii_only: bool, indent: int | None = None) -> str:
    return json.dumps(record.model_dump(), ensure_ascii=ascii_only, indent=indent)


@_PROP
@given(RECORDS, PROSE_BEFORE, PROSE_AFTER, st.booleans())
def test_property_fenced_block_with_prose(record: Record, before: str, after: str, ascii_only: bool) -> None:
    text = f"{before}\n```json\n{_dump(record, ascii_only)}\n```\n{after}"
    got = extract(text, Record)
    assert got.value == record
    assert not got.repaired


@_PROP
@given(RECORDS, PROSE_BEFORE, PROSE_AFTER, st.booleans())
def test_property_bare_json_in_prose(record: Record, before: str, after: str, ascii_only: bool) -> None:
    text = f"{before} {_dump(record, ascii_only)} {after}"
    assert extract(text, Record).value == record


@_PROP
@given(RECORDS, PROSE_BEFORE, st.sampled_from([2, 4]))
def test_property_pretty_printed(record: Record, before: str, indent: int) -> None:
    assert extract(f"{before}\n{_dump(record, False, indent)}", Record).value == record


def _structural_closers(doc: str) -> list[int]:
    """Positions of ``}`` / ``]`` outside strings that close a non-empty container."""
    out, in_string, escaped = [], False, False
    for i, ch in enumerate(doc):
        if in_string:
            escaped, in_string = (False, True) if escaped else (ch == "\\", ch != '"')
        elif ch == '"':
            in_string = True
        elif ch in "}]" and doc[:i].rstrip()[-1:] not in ("{", "["):
            out.append(i)
    return out


@_PROP
@given(RECORDS, PROSE_BEFORE, st.data())
def test_property_trailing_comma(record: Record, before: str, data: st.DataObject) -> None:
    doc = _dump(record, False)
    where = data.draw(st.sampled_from(_structural_closers(doc)))
    text = f"{before} {doc[:where]},{doc[where:]}"
    got = extract(text, Record)
    assert got.value == record
    assert got.repaired
