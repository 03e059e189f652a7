"""Verified identities: every request carries a signed JWT, and the actor of every action is
taken from it, never from the body."""

import time
from collections import OrderedDict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated

import jwt
import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError

from api.errors import ApiError
from config.settings import Settings
from domain.models import Actor
from domain.roles import Role

CLAIMS = ("team", "department", "district", "street", "community")
# The scope claims each role cannot act without.
REQUIRED_SCOPE: dict[Role, tuple[str, ...]] = {
    Role.OFFICER: ("team",),
    Role.DEPARTMENT: ("department",),
    Role.COMMUNITY: ("district",),
}


def _key(text_or_path: str) -> str:
    path = Path(text_or_path)
    return path.read_text() if "-----BEGIN" not in text_or_path and path.is_file() else text_or_path


def _keys(settings: Settings) -> tuple[str, str]:
    """(signing key, verification key) for the configured algorithm."""
    if settings.jwt_algorithm == "RS256":
        return (_key(settings.jwt_private_key.get_secret_value()), _key(settings.jwt_public_key))
    secret = settings.jwt_secret.get_secret_value()
    return secret, secret


def mint_token(settings: Settings, actor: Actor, ttl: timedelta | None = None) -> str:
    now = datetime.now(timezone.utc)
    claims = {"sub": actor.id, "name": actor.name, "role": actor.role.value, "iat": now,
              "exp": now + (ttl or timedelta(minutes=settings.token_ttl_minutes))}
    claims.update({c: getattr(actor, c) for c in CLAIMS if getattr(actor, c)})
    return jwt.encode(claims, _keys(settings)[0], algorithm=settings.jwt_algorithm)


# Tokens verified already, by (verification key, token): an officer's app sends the same token
# with every request until it expires, and decoding and checking it again cost about 5 % of the
# API's CPU. Only the very token verified before is found (its signature is part of the key),
# and its expiry is checked at every use.
_VERIFIED: OrderedDict[tuple[str, str], tuple[Actor, float]] = OrderedDict()
_VERIFIED_LIMIT = 4096


def verify_token(settings: Settings, token: str) -> Actor:
    key = _keys(settings)[1]
    cached = _VERIFIED.get((key, token))
    if cached is not None and cached[1] > time.time():
        return cached[0]
    actor, expires = _verify(settings, key, token)
    _VERIFIED[(key, token)] = (actor, expires)
    if len(_VERIFIED) > _VERIFIED_LIMIT:
        _VERIFIED.popitem(last=False)
    return actor


def _verify(settings: Settings, key: str, token: str) -> tuple[Actor, float]:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError:
        raise _unauthorized("malformed_token", "The bearer token is not a JWT.") from None
    if header.get("alg", "none").lower() == "none":
        raise _unauthorized("unsigned_token", "Unsigned tokens are not accepted.")
    try:
        claims = jwt.decode(token, key, algorithms=[settings.jwt_algorithm],
                            options={"require": ["sub", "role", "exp"]})
    except jwt.ExpiredSignatureError:
        raise _unauthorized("token_expired", "The token has expired; sign in again.") from None
    except jwt.InvalidSignatureError:
        raise _unauthorized("invalid_signature", "The token's signature is not valid.") from None
    except jwt.MissingRequiredClaimError as err:
        raise _unauthorized("invalid_claims", f"The token lacks the '{err.claim}' claim.") from None
    except jwt.InvalidTokenError as err:
        raise _unauthorized("invalid_token", f"The token is not valid: {err}.") from None
    try:
        actor = Actor(id=claims["sub"], name=claims.get("name") or "", role=claims["role"],
                      **{c: claims.get(c) for c in CLAIMS})
    except ValidationError as err:
        fields = ", ".join(str(e["loc"][0]) for e in err.errors())
        raise _unauthorized("invalid_claims", f"The token's claims are not valid: {fields}.") \
            from None
    if actor.role == Role.SYSTEM:
        raise _unauthorized("invalid_claims", "No token may act as the system.")
    missing = [c for c in REQUIRED_SCOPE.get(actor.role, ()) if not getattr(actor, c)]
    if missing:
        raise _unauthorized("invalid_claims",
                            f"A {actor.role.value} token needs the {', '.join(missing)} claim.")
    return actor, float(claims["exp"])


def _unauthorized(code: str, message: str) -> ApiError:
    return ApiError(401, code, message, headers={"WWW-Authenticate": "Bearer"})


# Declares the scheme in the OpenAPI document (the docs' Authorize button); the header itself is
# read below so that each way of getting it wrong has its own code.
_bearer_scheme = HTTPBearer(auto_error=False, description="A JWT minted by the city's identity "
                            "service, or `bihuan token` for local use")


async def current_actor(request: Request,
                        _credentials: HTTPAuthorizationCredentials | None = Depends(_bearer_scheme)
                        ) -> Actor:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise _unauthorized("missing_token", "Send 'Authorization: Bearer <token>'.")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("malformed_token", "The Authorization header must be 'Bearer <token>'.")
    actor = verify_token(request.app.state.settings, token.strip())
    request.state.actor = actor
    # Async, so the binding reaches the route and every line it logs.
    structlog.contextvars.bind_contextvars(actor=actor.id, role=actor.role.value)
    return actor


CurrentActor = Annotated[Actor, Depends(current_actor)]
