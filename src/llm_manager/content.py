"""Content parts: what a message carries besides plain text.

A :class:`~llm_manager.types.Message`'s ``content`` is a string or a tuple of parts: text, an image (a URL or inline
bytes with their media type), audio input, a file (a PDF or another document), and, on assistant turns, the model's
reasoning. Every codec translates them to its protocol (OpenAI ``image_url`` / ``input_audio`` / ``file``, Anthropic
``image`` / ``document`` / ``thinking`` blocks, Gemini ``inlineData`` / ``fileData``), and routing skips deployments
whose profile does not accept a part's modality.

Build parts from files or bytes with the ``from_path`` / ``from_bytes`` helpers::

    from llm_manager import ImagePart, Message, TextPart

    msg = Message(role="user", content=(TextPart(text="What is in this picture?"), ImagePart.from_path("cat.png")))

Inline bytes travel as bytes inside the library and as base64 on every wire and in JSON dumps.
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "AudioPart",
    "FilePart",
    "ImagePart",
    "Modality",
    "Part",
    "ReasoningPart",
    "TextPart",
    "data_url",
    "describe",
    "digest",
    "modality_of",
    "parse_data_url",
    "part_chars",
    "sniff_media_type",
]

Modality = Literal["text", "image", "audio", "file"]
"""Kinds of input content: ``file`` is a document (PDF, plain text) sent as a file part."""


class _Part(BaseModel):
    # Bytes as base64 in JSON (conversations, the cache, logs): they are binary, not UTF-8 text.
    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64")


class TextPart(_Part):
    """A piece of text."""

    type: Literal["text"] = "text"
    text: str
    cache_control: dict[str, Any] | None = None
    """A prompt-caching breakpoint (``{"type": "ephemeral"}``): sent to Anthropic as is; OpenAI and Gemini cache
    prompts by themselves, and report it as not sent."""


class _Media(_Part):
    """What images, audio and files share: a URL or inline bytes, with a media type."""

    url: str | None = None
    """An ``http(s)`` URL the provider fetches (or a provider's file URI)."""
    data: bytes | None = None
    """The bytes themselves."""
    media_type: str | None = None
    """``image/png``, ``audio/wav``, ``application/pdf`` … (required with ``data``)."""
    cache_control: dict[str, Any] | None = None
    """A prompt-caching breakpoint (see :attr:`TextPart.cache_control`)."""

    @model_validator(mode="after")
    def _one_source(self) -> _Media:
        if (self.url is None) == (self.data is None) and not getattr(self, "file_id", None):
            raise ValueError("give exactly one of url or data")
        if self.data is not None and not self.media_type:
            raise ValueError("inline data needs its media_type (e.g. image/png)")
        return self

    def source_url(self) -> str:
        """The URL, or the inline bytes as a ``data:`` URL."""
        if self.url is not None:
            return self.url
        return data_url(self.media_type or "application/octet-stream", self.data or b"")

    def b64(self) -> str:
        """The inline bytes, base64-encoded (empty without inline data)."""
        return base64.b64encode(self.data or b"").decode("ascii")


class ImagePart(_Media):
    """An image: by URL or inline bytes."""

    type: Literal["image"] = "image"
    detail: Literal["auto", "low", "high"] | None = None
    """OpenAI's resolution hint; other providers ignore it."""

    @classmethod
    def from_bytes(cls, data: bytes, media_type: str | None = None, **fields: Any) -> ImagePart:
        """An inline image; the media type is read from the bytes' signature when not given (PNG, JPEG, GIF, WebP)."""
        return cls(data=data, media_type=media_type or sniff_media_type(data) or "image/png", **fields)

    @classmethod
    def from_path(cls, path: str | Path, **fields: Any) -> ImagePart:
        """An inline image read from a file; the media type comes from its bytes, else its name."""
        data = Path(path).read_bytes()
        return cls(data=data, media_type=sniff_media_type(data) or _guess(path, "image/png"), **fields)


class AudioPart(_Media):
    """Audio input (a recording the model listens to), inline or by URL."""

    type: Literal["audio"] = "audio"

    @classmethod
    def from_bytes(cls, data: bytes, media_type: str = "audio/wav") -> AudioPart:
        """Inline audio (``audio/wav``, ``audio/mpeg`` …)."""
        return cls(data=data, media_type=media_type)

    @classmethod
    def from_path(cls, path: str | Path) -> AudioPart:
        """Inline audio read from a file; the media type comes from its name."""
        return cls(data=Path(path).read_bytes(), media_type=_guess(path, "audio/wav"))


class FilePart(_Media):
    """A document (a PDF, plain text …): inline, by URL, or a provider's uploaded-file id."""

    type: Literal["file"] = "file"
    filename: str | None = None
    file_id: str | None = None
    """An OpenAI uploaded file's id (only OpenAI deployments can read it)."""

    @classmethod
    def from_bytes(cls, data: bytes, media_type: str = "application/pdf", filename: str | None = None) -> FilePart:
        """An inline document."""
        return cls(data=data, media_type=media_type, filename=filename)

    @classmethod
    def from_path(cls, path: str | Path) -> FilePart:
        """An inline document read from a file; the media type comes from its bytes, else its name."""
        data = Path(path).read_bytes()
        media = sniff_media_type(data) or _guess(path, "application/octet-stream")
        return cls(data=data, media_type=media, filename=Path(path).name)


class ReasoningPart(_Part):
    """The model's reasoning (thinking) on an assistant turn, kept so it can be sent back: Anthropic requires its
    signed thinking blocks again when a turn with tool calls continues."""

    type: Literal["reasoning"] = "reasoning"
    text: str = ""
    signature: str | None = None
    """The provider's signature of the reasoning (Anthropic ``signature``, Gemini ``thoughtSignature``)."""
    redacted: str | None = None
    """Reasoning the provider returned encrypted (Anthropic ``redacted_thinking``): opaque, sent back as is."""


Part = Annotated[TextPart | ImagePart | AudioPart | FilePart | ReasoningPart, Field(discriminator="type")]
"""One content part."""

_MODALITY: dict[str, Modality] = {"text": "text", "image": "image", "audio": "audio", "file": "file"}


def modality_of(part: Any) -> Modality | None:
    """The input modality a part needs (``None`` for reasoning, which is the model's own output)."""
    return _MODALITY.get(part.type)


# Token estimates before a provider counts (planning, budgets): a part weighs what this many characters of text would
# (4 characters a token). They err on the high side, as the text estimate does.
_IMAGE_CHARS = 1_600 * 4
"""An image costs at most ~1,600 tokens at Anthropic (1.15 megapixels) and ~1,100 at OpenAI's high detail."""
_LOW_DETAIL_CHARS = 85 * 4
_AUDIO_BYTES_PER_CHAR = 128
"""~2 tokens per kB of audio: Gemini counts 32 tokens a second, which is 1 per kB of 16 kHz WAV, 2 of 128 kbit MP3."""
_UNKNOWN_AUDIO_CHARS = 32 * 60 * 4
"""Audio by URL: its length is unknown; a minute is assumed."""
_PDF_BYTES_PER_CHAR = 5
"""A PDF page is ~1,500–3,000 tokens (text and page image) and ~10–100 kB."""
_UNKNOWN_FILE_CHARS = 3_000 * 4


def part_chars(part: Any) -> int:
    """What ``part`` weighs in characters of text, for token estimates."""
    kind = part.type
    if kind in ("text", "reasoning"):
        return len(part.text)
    if kind == "image":
        return _LOW_DETAIL_CHARS if part.detail == "low" else _IMAGE_CHARS
    data: bytes | None = part.data
    if kind == "audio":
        return len(data) // _AUDIO_BYTES_PER_CHAR if data is not None else _UNKNOWN_AUDIO_CHARS
    if data is None:
        return _UNKNOWN_FILE_CHARS
    if (part.media_type or "").startswith("text/"):
        return len(data)
    return max(len(data) // _PDF_BYTES_PER_CHAR, 1_500 * 4)


def describe(part: Any) -> dict[str, Any]:
    """A part for logs and traces: what it is, never its bytes (their size and content address instead)."""
    out: dict[str, Any] = {"type": part.type}
    if part.type in ("text", "reasoning"):
        out["chars"] = len(part.text)
        return out
    if part.media_type:
        out["media_type"] = part.media_type
    if part.data is not None:
        out.update(bytes=len(part.data), digest=digest(part.data))
    elif part.url is not None:
        out["url"] = part.url if not part.url.startswith("data:") else "data:…"
    return out


def data_url(media_type: str, data: bytes) -> str:
    """``data:<media type>;base64,<data>``."""
    return f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"


def parse_data_url(url: str) -> tuple[str, bytes] | None:
    """``(media type, bytes)`` of a base64 ``data:`` URL; ``None`` for any other URL. Raises ``ValueError`` for a
    ``data:`` URL that is not valid base64."""
    if not url.startswith("data:"):
        return None
    head, sep, payload = url[5:].partition(",")
    if not sep or not head.endswith(";base64"):
        raise ValueError("a data: URL must be base64 (data:<media type>;base64,<data>)")
    try:
        return head[: -len(";base64")] or "application/octet-stream", base64.b64decode(payload, validate=True)
    except ValueError:
        raise ValueError("the data: URL's payload is not valid base64") from None


def digest(data: bytes) -> str:
    """The content address of inline bytes (``sha256:<hex>``): cache keys and stored conversations use it, so large
    data is hashed once and stored once."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"ID3", "audio/mpeg"),
    (b"fLaC", "audio/flac"),
    (b"OggS", "audio/ogg"),
)


def sniff_media_type(data: bytes) -> str | None:
    """The media type a file's first bytes announce (PNG, JPEG, GIF, WebP, PDF, WAV, MP3, FLAC, Ogg), if any."""
    for magic, media in _SIGNATURES:
        if data.startswith(magic):
            return media
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    return None


def _guess(path: str | Path, default: str) -> str:
    return mimetypes.guess_type(str(path))[0] or default
