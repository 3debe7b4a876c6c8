"""Reading ``POST /predict`` in the HTTP process, before anything reaches an inference worker.

A FastAPI dependency checks the API key, bounds the payload while it streams in, and accepts three bodies:
multipart field ``audio`` (a file), JSON ``{"audio_base64": ...}``, or the raw bytes of an audio file with an
``audio/*`` or ``application/octet-stream`` content type. Everything wrong with the request itself is
answered here with a 4xx JSON ``{"detail": ...}``; the audio is decoded by the worker.

This module must not use ``from __future__ import annotations``: LitServe hands the annotation of
``decode_request`` to FastAPI as a live object.
"""

import base64
import binascii
import hmac
import json
import math
import os
import time
from dataclasses import dataclass

from fastapi import Header, HTTPException, Query, Request
from starlette.datastructures import UploadFile

API_KEY_ENV = "ZOO_API_KEY"
AUDIO_CONTENT_TYPES = ("audio/", "application/octet-stream")
TRUE_WORDS = ("1", "true", "yes", "on")
# A JSON body is one small object ({"audio_base64": ..., "preview": ...}). Its shape is bounded before parsing,
# by counting bytes (C speed): a body of millions of tiny objects, or nested 100,000 deep, is refused without
# building it.
MAX_JSON_ITEMS = 64  # '{', '[' and ',' in the whole body (inside strings too)
MAX_JSON_DEPTH = 8


@dataclass(frozen=True)
class RequestLimits:
    """Set on ``app.state.request_limits`` by the server; read by every request."""

    max_payload_bytes: int
    api_key: str | None = None
    max_search_seconds: float = 30.0  # `zoo serve --max-search-seconds`


@dataclass(frozen=True)
class PredictPayload:
    """What the HTTP process hands to a worker (pickled): the recording's bytes and the options."""

    audio: bytes
    filename: str | None
    preview: bool
    received_at: float  # time.time() when the request arrived
    search_seconds: float = 0.0  # budget of the preset search; 0: the network's preset alone


def _limits(request: Request) -> RequestLimits:
    limits = getattr(request.app.state, "request_limits", None)
    return limits or RequestLimits(max_payload_bytes=32 * 2**20, api_key=os.environ.get(API_KEY_ENV) or None)


def _check_key(limits: RequestLimits, x_api_key: str | None, authorization: str | None) -> None:
    if not limits.api_key:
        return
    given = x_api_key
    if given is None and authorization and authorization.lower().startswith("bearer "):
        given = authorization[7:].strip()
    if given is None or not hmac.compare_digest(given.encode(), limits.api_key.encode()):
        what = "missing" if given is None else "wrong"
        raise HTTPException(401, f"{what} API key: send it in the X-API-Key header", {"WWW-Authenticate": "X-API-Key"})


async def _read_body(request: Request, max_bytes: int) -> bytes:
    too_large = f"the request body is over the {max_bytes / 2**20:g} MB limit"
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise HTTPException(413, f"{too_large} ({int(declared) / 2**20:.1f} MB)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise HTTPException(413, too_large)
        chunks.append(chunk)
    return b"".join(chunks)


async def _from_multipart(request: Request, body: bytes) -> tuple[bytes, str | None, str | None, object]:
    from starlette.formparsers import MultiPartException, MultiPartParser

    async def stream():
        yield body

    try:
        form = await MultiPartParser(request.headers, stream(), max_files=4, max_fields=16).parse()
    except MultiPartException as e:
        raise HTTPException(400, f"the multipart body cannot be parsed: {e.message}") from None
    field = form.get("audio")
    if field is None:
        fields = ", ".join(form.keys()) or "none"
        raise HTTPException(400, f"the multipart form has no `audio` field (fields: {fields})")
    if not isinstance(field, UploadFile):
        raise HTTPException(400, "the `audio` field must be a file upload (curl -F audio=@sound.wav)")
    data = await field.read()
    preview = form.get("preview")
    return data, field.filename, preview if isinstance(preview, str) else None, form.get("search_seconds")


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def _parse_json(body: bytes) -> object:
    """Parse a JSON body whose shape is bounded first: at most ``MAX_JSON_ITEMS`` objects, arrays and separators
    (counted on the raw bytes, so nothing big is built) and ``MAX_JSON_DEPTH`` levels of nesting."""
    items = body.count(b"{") + body.count(b"[") + body.count(b",")
    if items > MAX_JSON_ITEMS:
        raise HTTPException(
            400,
            f"the JSON body has too many objects, arrays or items ({items} of '{{', '[' and ','; the limit is "
            f"{MAX_JSON_ITEMS}): send one object with audio_base64 and, optionally, preview and search_seconds",
        )
    try:
        doc = json.loads(body)
    except UnicodeDecodeError:
        raise HTTPException(400, "the JSON body is not valid JSON (it is not UTF-8 text)") from None
    except json.JSONDecodeError as e:
        raise HTTPException(400, f"the JSON body is not valid JSON ({e})") from None
    except (ValueError, RecursionError):  # e.g. an integer of more digits than Python converts
        raise HTTPException(400, "the JSON body is not valid JSON (a value cannot be read)") from None
    depth = _depth(doc)
    if depth > MAX_JSON_DEPTH:
        raise HTTPException(400, f"the JSON body is nested {depth} levels deep; the limit is {MAX_JSON_DEPTH}")
    return doc


def _from_json(body: bytes) -> tuple[bytes, bool | None, object]:
    doc = _parse_json(body)
    if not isinstance(doc, dict) or "audio_base64" not in doc:
        raise HTTPException(400, 'the JSON body must be an object with "audio_base64" (the file, base64 encoded)')
    if not isinstance(doc["audio_base64"], str):
        raise HTTPException(400, '"audio_base64" must be a string')
    text = doc["audio_base64"]
    if text.startswith("data:") and "," in text:  # a data: URL
        text = text.split(",", 1)[1]
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise HTTPException(400, '"audio_base64" is not valid base64') from None
    preview = doc.get("preview")
    return data, preview if isinstance(preview, bool) else None, doc.get("search_seconds")


def _search_seconds(value: object, limit: float) -> float:
    """The search budget a request asks for: a number of seconds in [0, limit], else a 400 naming the limit."""
    if value is None or value == "":
        return 0.0
    try:
        seconds = float(value) if isinstance(value, (int, float, str)) and not isinstance(value, bool) else math.nan
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and 0.0 <= seconds <= limit):
        shown = value if isinstance(value, (int, float, str)) else type(value).__name__
        limits = f"from 0 to {limit:g} (this server's limit)"
        raise HTTPException(400, f"`search_seconds` must be a number of seconds {limits}, got {shown!r}")
    return seconds


async def read_predict_request(
    request: Request,
    preview: bool = Query(False, description="Also render the predicted preset with Vital and return it as WAV."),
    search_seconds: str | None = Query(
        None, description="Seconds to search for a closer preset with Vital renders (default 0: the network's preset)."
    ),
    x_api_key: str | None = Header(None, description=f"Required when the server has {API_KEY_ENV} set."),
    authorization: str | None = Header(None, include_in_schema=False),
) -> PredictPayload:
    """FastAPI dependency of ``POST /predict``: authenticate, read and unwrap the body."""
    received = time.time()
    limits = _limits(request)
    _check_key(limits, x_api_key, authorization)
    body = await _read_body(request, limits.max_payload_bytes)
    if not body:
        raise HTTPException(
            400, "the request body is empty: send the recording as multipart field `audio` or JSON audio_base64"
        )
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    filename = None
    body_search: object = None
    if content_type == "multipart/form-data":
        data, filename, form_preview, body_search = await _from_multipart(request, body)
        preview = preview or (form_preview or "").lower() in TRUE_WORDS
    elif content_type == "application/json" or content_type.endswith("+json"):
        data, json_preview, body_search = _from_json(body)
        preview = preview or bool(json_preview)
    elif content_type.startswith(AUDIO_CONTENT_TYPES):
        data = body
    else:
        raise HTTPException(
            415,
            f"unsupported content type {content_type or '(none)'!r}: use multipart/form-data with field `audio`, "
            "application/json with audio_base64, or audio/* with the file as the body",
        )
    if not data:
        raise HTTPException(400, "the uploaded audio is empty (0 bytes)")
    seconds = _search_seconds(body_search if body_search is not None else search_seconds, limits.max_search_seconds)
    return PredictPayload(
        audio=data, filename=filename, preview=bool(preview), received_at=received, search_seconds=seconds
    )
