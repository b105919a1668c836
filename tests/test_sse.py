"""The sans-IO SSE decoder: WHATWG line rules case by case, then round trips under arbitrary network splits."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_manager._sse import SSEDecoder, SSEEvent, aiter_sse, encode_event


def feed_all(*pieces: bytes) -> list[SSEEvent]:
    decoder = SSEDecoder()
    out: list[SSEEvent] = []
    for piece in pieces:
        out += decoder.feed(piece)
    return out


def datas(events: list[SSEEvent]) -> list[str]:
    return [e.data for e in events]


# --- unit cases -------------------------------------------------------------------------------------------------


def test_single_event() -> None:
    assert feed_all(b"data: hello\n\n") == [SSEEvent("hello")]


def test_several_events_in_one_chunk() -> None:
    assert datas(feed_all(b"data: a\n\ndata: b\n\ndata: c\n\n")) == ["a", "b", "c"]


def test_events_hands_on_each_event_before_decoding_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    # A fast upstream's whole answer can arrive in one read: its first event must not wait for the rest's lines.
    decoded: list[str] = []
    line = SSEDecoder._line

    def counting(self: SSEDecoder, text: str) -> SSEEvent | None:
        decoded.append(text)
        return line(self, text)

    monkeypatch.setattr(SSEDecoder, "_line", counting)
    dec = SSEDecoder()
    events = dec.events(b"data: a\n\ndata: b\n\ndata: c\n\n")
    assert next(events).data == "a"
    assert decoded == ["data: a", ""]
    assert [e.data for e in events] == ["b", "c"]
    assert dec.feed(b"data: d\n\n") == [SSEEvent("d")]  # feed: the same, as a list


def test_multi_line_data_joined_with_newline() -> None:
    assert datas(feed_all(b"data: first\ndata: second\ndata:\ndata: fourth\n\n")) == ["first\nsecond\n\nfourth"]


def test_crlf_line_ends() -> None:
    assert datas(feed_all(b"data: a\r\ndata: b\r\n\r\ndata: c\r\n\r\n")) == ["a\nb", "c"]


def test_lone_cr_line_ends() -> None:
    assert datas(feed_all(b"data: a\rdata: b\r\rdata: c\r\r")) == ["a\nb", "c"]


def test_crlf_split_between_cr_and_lf_is_one_line_end() -> None:
    # If the \n after a chunk-final \r were a second line end, "a" would be dispatched before "b" joined it.
    assert datas(feed_all(b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n")) == ["a\nb"]


def test_empty_chunk_between_cr_and_lf() -> None:
    assert datas(feed_all(b"data: a\r", b"", b"\ndata: b\n\n")) == ["a\nb"]


def test_cr_at_chunk_end_then_blank_line() -> None:
    assert datas(feed_all(b"data: a\r", b"\r")) == ["a"]
    assert datas(feed_all(b"data: a\r", b"\n", b"\n")) == ["a"]


def test_comments_are_ignored() -> None:
    raw = b": keep-alive\n\n:\n\ndata: a\n: a comment inside an event\ndata: b\n\n"
    assert datas(feed_all(raw)) == ["a\nb"]


def test_event_id_and_retry_fields() -> None:
    events = feed_all(b"event: delta\nid: 7\nretry: 1500\ndata: x\n\ndata: y\n\n")
    assert events[0] == SSEEvent("x", event="delta", id="7", retry=1500)
    # The event name and retry belong to one event; the last event id persists, per the spec.
    assert events[1] == SSEEvent("y", event="message", id="7", retry=None)


def test_id_with_nul_is_ignored() -> None:
    assert feed_all(b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n")[1].id == "1"


def test_invalid_retry_values_are_ignored() -> None:
    for value in (b"soon", b"12a", b"-5", b"1.5", "\u00b2".encode(), "\u0663".encode()):
        assert feed_all(b"retry: " + value + b"\ndata: a\n\n") == [SSEEvent("a")]


def test_no_space_after_colon_and_only_one_space_stripped() -> None:
    assert datas(feed_all(b"data:x\n\ndata:  two spaces\n\ndata:\tx\n\n")) == ["x", " two spaces", "\tx"]


def test_value_may_contain_colons() -> None:
    assert datas(feed_all(b'data: {"a": "b:c"}\n\n')) == ['{"a": "b:c"}']


def test_field_without_colon_has_empty_value() -> None:
    assert datas(feed_all(b"data\ndata\n\n")) == ["\n"]


def test_unknown_fields_are_ignored() -> None:
    assert feed_all(b"foo: bar\ndata: a\nData: b\n\n") == [SSEEvent("a")]


def test_block_without_data_dispatches_nothing() -> None:
    # An event name alone is not an event, and its name must not stick to the next one.
    assert feed_all(b"event: ping\n\ndata: a\n\n") == [SSEEvent("a")]
    assert feed_all(b"id: 3\n\n\n\n") == []


def test_utf8_multibyte_split_across_chunks() -> None:
    raw = "data: añ日本🙂\n\n".encode()
    for cut in range(len(raw) + 1):
        assert datas(feed_all(raw[:cut], raw[cut:])) == ["añ日本🙂"], cut
    assert datas(feed_all(*(raw[i : i + 1] for i in range(len(raw))))) == ["añ日本🙂"]


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    assert datas(feed_all(b"data: a\xffb\n\n")) == ["a\ufffdb"]


def test_final_event_without_blank_line_is_not_dispatched() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\ndata: unfinished\n") == [SSEEvent("a")]
    assert decoder.has_partial
    assert decoder.flush() == []
    assert not decoder.has_partial


def test_unfinished_line_is_partial() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: half") == []
    assert decoder.has_partial
    assert decoder.feed(b" and half\n\n") == [SSEEvent("half and half")]
    assert not decoder.has_partial


def test_encode_event() -> None:
    assert encode_event("x") == b"data: x\n\n"
    assert encode_event("a\nb", event="delta") == b"event: delta\ndata: a\ndata: b\n\n"
    assert encode_event(b"a\r\nb\rc") == b"data: a\ndata: b\ndata: c\n\n"
    assert feed_all(encode_event("", event="e")) == [SSEEvent("", event="e")]


async def test_aiter_sse() -> None:
    async def pieces() -> AsyncIterator[bytes]:
        for piece in (b"data: a\n", b"\nda", b"ta: b\n\n", b"data: lost\n"):
            yield piece

    assert [e.data async for e in aiter_sse(pieces())] == ["a", "b"]


# --- properties -------------------------------------------------------------------------------------------------

# Any Unicode except surrogates (not encodable as UTF-8); newlines of every kind included on purpose.
_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
_data = st.one_of(
    _text, st.lists(st.sampled_from(["\n", "\r\n", "\r", "x", "é", "🙂", ":", " ", ""]), max_size=8).map("".join)
)
# Event names cannot hold line ends; the empty name means "message" on the wire.
_names = st.one_of(
    st.none(),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), min_size=1, max_size=12),
)
_events = st.lists(st.tuples(_data, _names), max_size=8)


def _expected(events: list[tuple[str, str | None]]) -> list[tuple[str, str]]:
    return [(d.replace("\r\n", "\n").replace("\r", "\n"), name or "message") for d, name in events]


def _split(blob: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted(min(c, len(blob)) for c in cuts)  # duplicates give empty pieces, which must be harmless
    bounds = [0, *points, len(blob)]
    return [blob[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def _decode(pieces: list[bytes]) -> list[tuple[str, str]]:
    return [(e.data, e.event) for e in feed_all(*pieces)]


@given(events=_events, cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=30))
def test_round_trip_under_arbitrary_splits(events: list[tuple[str, str | None]], cuts: list[int]) -> None:
    blob = b"".join(encode_event(d, n) for d, n in events)
    assert _decode(_split(blob, cuts)) == _expected(events)


@given(events=_events)
def test_round_trip_byte_by_byte(events: list[tuple[str, str | None]]) -> None:
    blob = b"".join(encode_event(d, n) for d, n in events)
    assert _decode([blob[i : i + 1] for i in range(len(blob))]) == _expected(events)


@given(
    events=_events,
    line_end=st.sampled_from([b"\r\n", b"\r"]),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=30),
)
def test_crlf_and_cr_decode_like_lf(events: list[tuple[str, str | None]], line_end: bytes, cuts: list[int]) -> None:
    # encode_event writes only \n line ends (it normalises those inside data), so every \n here is a line end.
    blob = b"".join(encode_event(d, n) for d, n in events)
    variant = blob.replace(b"\n", line_end)
    assert _decode(_split(variant, cuts)) == _decode([blob]) == _expected(events)
