"""What the REST face's modules share: its settings and paths, JSON answers, the two ways a
request is answered early (:class:`Answered`, :class:`CheckFailed`), strict decoding of path
segments, forms and JSON bodies, and :func:`guarded`, which turns every way out of a handler,
bugs included, into a JSON answer.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, unquote_plus

from aiohttp import web

from gateway.simulator.rest_mapping import CHECK_TEXT
from gateway.strictjson import unique_keys

log = logging.getLogger(__name__)

TOKEN_PATH = "/identity/connect/token"  # noqa: S105 - a path, not a secret
API_PREFIX = "/api/"
# the client credentials of Solidsoft's own samples
DEFAULT_CLIENT_ID = "demo-pharmacy"
DEFAULT_CLIENT_SECRET = "itsasecret"  # noqa: S105 - a documented demo value
DEFAULT_TOKEN_LIFETIME = 3600  # seconds
DEFAULT_MAX_BULK_PACKS = 10_000
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_INVALID_TOKEN = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


@dataclass(frozen=True, slots=True)
class RestSettings:
    """The token endpoint's client credentials (they stand for the market's first account) and
    token lifetime in seconds, and the most packs one bulk or recovery request may hold."""

    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    token_lifetime: int = DEFAULT_TOKEN_LIFETIME
    max_bulk_packs: int = DEFAULT_MAX_BULK_PACKS


def json_answer(
    body: Mapping[str, Any], status: int, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


def unauthorized(information: str) -> web.Response:
    return json_answer({"information": information}, 401, _INVALID_TOKEN)


class Answered(Exception):
    """The request is answered with ``response`` without (further) processing."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


class CheckFailed(Exception):
    """A request check failed: 422 with Solidsoft's operation code and its text."""

    def __init__(self, code: str, detail: str | None = None, **text_values: object) -> None:
        text = CHECK_TEXT[code].format(**text_values)
        self.information = text if detail is None else f"{text.removesuffix('.')}: {detail}"
        super().__init__(self.information)
        self.code = code

    def response(self) -> web.Response:
        return json_answer({"operationCode": self.code, "information": self.information}, 422)


def decode(raw: str, *, form: bool = False) -> str | None:
    """``raw`` percent-decoded once (``form``: ``+`` is a space too); None if it is not a
    proper encoding (a ``%`` without two hex digits, or bytes that are not UTF-8)."""
    if _BAD_PERCENT.search(raw):
        return None
    try:
        return (unquote_plus if form else unquote)(raw, errors="strict")
    except UnicodeDecodeError:
        return None


def form_fields(raw: str) -> dict[str, list[str]] | None:
    """The fields of an ``application/x-www-form-urlencoded`` string (None: it is not ASCII,
    or its percent-escapes are not UTF-8)."""
    if not raw.isascii():
        return None
    try:
        return parse_qs(raw, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        return None


def _strict_json(body: bytes) -> object:
    """The JSON document ``body``; raises ValueError (with the reason) for anything that is not
    strictly JSON: not UTF-8, NaN or Infinity, a key given twice."""

    def no_constant(name: str) -> object:
        raise ValueError(f"{name} is not JSON")

    try:
        text = body.decode("utf-8")
        return json.loads(text, object_pairs_hook=unique_keys, parse_constant=no_constant)
    except UnicodeDecodeError:
        raise ValueError("it is not UTF-8") from None
    except RecursionError:
        raise ValueError("it is nested too deeply") from None


def json_object(body: bytes, invalid_code: str) -> dict[str, Any]:
    """The request body as a strict JSON object, else the check ``invalid_code`` fails."""
    try:
        document = _strict_json(body)
    except ValueError as error:
        raise CheckFailed(invalid_code, str(error)) from None
    if not isinstance(document, dict):
        raise CheckFailed(invalid_code, "it must be a JSON object")
    return document


def language(request: web.Request) -> str:
    """The market language of the request's ``accept-language`` (French or English)."""
    return "fra" if request.headers.get("accept-language", "").lower().startswith("fr") else "eng"


def guarded(
    serve: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """``serve`` with every way out a JSON answer: checks, aiohttp's own errors, bugs."""

    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            return await serve(request)
        except Answered as answered:
            return answered.response
        except CheckFailed as failed:
            return failed.response()
        except web.HTTPException as error:  # aiohttp's own answers, e.g. 413 for a huge body
            return json_answer({"information": error.reason}, error.status)
        except Exception:
            log.exception("simulator bug while handling %s %s", request.method, request.path)
            return json_answer({"information": "Internal server error"}, 500)

    return handle
