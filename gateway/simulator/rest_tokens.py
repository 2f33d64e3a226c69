"""The REST face's OAuth2 side: the client-credentials token endpoint, the in-memory table of
the tokens it issued, and the bearer check of every API call.

Client credentials stand for market accounts, and every login goes through the market, so
failed logins count towards the lockout exactly as over SOAP. A token expires on the market's
clock (``/_sim/clock`` moves it); each API call logs its account in again.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import uuid4

from aiohttp import web

from gateway.nmvs.arvato.returncodes import lookup
from gateway.simulator.market import Market, RequestHeader, UserSpec
from gateway.simulator.rest_wire import (
    Answered,
    RestSettings,
    decode,
    form_fields,
    json_answer,
    language,
    unauthorized,
)


@dataclass(frozen=True, slots=True)
class _Grant:
    """What an access token stands for: the account, the password it logs in with, until when."""

    account: tuple[str, str]
    password: str
    expires_at: datetime


def _oauth_error(error: str, description: str | None = None) -> web.Response:
    body = {"error": error} | ({"error_description": description} if description else {})
    return json_answer(body, 400)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _login(account: UserSpec, password: str) -> RequestHeader:
    return RequestHeader(account.client_login_id, account.user_id, password, uuid4().hex)


class TokenIssuer:
    """Issues access tokens for ``market``'s accounts and checks them on API calls."""

    def __init__(self, market: Market, settings: RestSettings) -> None:
        self._market = market
        self._settings = settings
        self._tokens: dict[str, _Grant] = {}

    async def endpoint(self, request: web.Request) -> web.Response:
        """``POST /identity/connect/token`` with ``grant_type=client_credentials``."""
        if request.method != "POST":
            return json_answer({"error": "invalid_request"}, 405, {"Allow": "POST"})
        if request.content_type != "application/x-www-form-urlencoded":
            return _oauth_error("invalid_request", "the body must be form-encoded")
        # latin-1 takes any byte; form_fields refuses what is not ASCII
        form = form_fields((await request.read()).decode("latin-1"))
        if form is None:
            return _oauth_error("invalid_request", "the body is not form-encoded")
        repeated = sorted(name for name, values in form.items() if len(values) > 1)
        if repeated:
            return _oauth_error("invalid_request", f"{repeated[0]} is given more than once")
        fields = {name: values[0] for name, values in form.items()}
        if fields.get("grant_type") != "client_credentials":
            return _oauth_error("unsupported_grant_type")
        client_id, client_secret = self._client_credentials(request, fields)
        header = self._account(client_id, client_secret)
        if header is None:
            return _oauth_error("invalid_client", "unknown client")
        refusal = self._market.authenticate(header)
        if refusal is not None:
            return _oauth_error("invalid_client", f"{refusal}: {lookup(refusal).message('eng')}")
        now = self._market.now()
        self._tokens = {token: g for token, g in self._tokens.items() if g.expires_at > now}
        token = secrets.token_urlsafe(32)
        lifetime = self._settings.token_lifetime
        self._tokens[token] = _Grant(
            header.user, header.password, now + timedelta(seconds=lifetime)
        )
        return json_answer(
            {"access_token": token, "token_type": "Bearer", "expires_in": lifetime},
            200,
            {"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    def caller(self, request: web.Request) -> RequestHeader:
        """The account of the request's bearer token, logged in again (it may be locked now);
        raises :class:`Answered` with a 401 otherwise."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        grant = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if grant is None:
            raise Answered(unauthorized("A valid access token is required."))
        if self._market.now() >= grant.expires_at:
            raise Answered(unauthorized("The access token has expired."))
        header = RequestHeader(*grant.account, grant.password, uuid4().hex, language(request))
        refusal = self._market.authenticate(header)
        if refusal is not None:
            raise Answered(unauthorized(lookup(refusal).message(header.language)))
        return header

    @staticmethod
    def _client_credentials(request: web.Request, fields: dict[str, str]) -> tuple[str, str]:
        """The client id and secret, from the form or HTTP Basic (RFC 6749 §2.3.1), not both."""
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        in_form = "client_id" in fields or "client_secret" in fields
        if scheme.lower() != "basic":
            if "client_id" not in fields or "client_secret" not in fields:
                raise Answered(
                    _oauth_error("invalid_request", "client_id and client_secret are required")
                )
            return fields["client_id"], fields["client_secret"]
        if in_form:
            raise Answered(
                _oauth_error("invalid_request", "give the client credentials once: Basic or form")
            )
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        raw_id, colon, raw_secret = decoded.partition(":")
        client_id, client_secret = decode(raw_id, form=True), decode(raw_secret, form=True)
        if not colon or client_id is None or client_secret is None:
            raise Answered(_oauth_error("invalid_request", "malformed Basic credentials"))
        return client_id, client_secret

    def _account(self, client_id: str, client_secret: str) -> RequestHeader | None:
        """The market account the client credentials stand for, with the password to log in
        with: the configured pair is the first account, an account's user id and password
        that account (the first with that user id)."""
        users = self._market.data.users
        if _same(client_id, self._settings.client_id):
            if not users:
                return None
            first = users[0]
            # a wrong client secret is a failed login of that account: log in with a password
            # that cannot be its own (one character longer)
            right = _same(client_secret, self._settings.client_secret)
            return _login(first, first.password if right else first.password + "\0")
        account = next((user for user in users if user.user_id == client_id), None)
        return None if account is None else _login(account, client_secret)
