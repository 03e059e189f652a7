"""Signing in to the dashboard: the bearer token the API accepts, kept in an HttpOnly cookie.

The cookie is SameSite=Strict and scoped to /dashboard, so no other site's page can send it; the
one state-changing call (督办) also requires a header a cross-site form cannot set."""

from datetime import datetime, timezone
from urllib.parse import parse_qs, quote

import jwt
from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from api.auth import verify_token
from api.errors import ApiError
from domain.models import Actor

COOKIE = "bihuan_dashboard"
PATH = "/dashboard"
# The header the dashboard's script sends with every POST (see static/dashboard.js).
CSRF_HEADER = "X-Bihuan-Dashboard"
MAX_FORM_BYTES = 16 * 1024


class SignInRequired(Exception):
    """No usable token: the page sends the browser to the sign-in form."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason or "")
        self.reason = reason


def signed_in(request: Request) -> Actor:
    token = request.cookies.get(COOKIE)
    if not token:
        raise SignInRequired()
    try:
        actor = verify_token(request.app.state.settings, token)
    except ApiError as err:
        raise SignInRequired(err.code) from None
    request.state.actor = actor
    return actor


def sign_in_redirect(request: Request, reason: str | None) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    url = f"{PATH}/login?next={quote(target, safe='')}"
    if reason:
        url += f"&reason={quote(reason)}"
    response = RedirectResponse(url, status_code=303)
    if reason:  # a token that no longer verifies is of no use to keep
        response.delete_cookie(COOKIE, path=PATH)
    return response


async def form_fields(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body, first value of each field."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise ApiError(413, "body_too_large", "The form is too large.")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        return {}
    return {name: values[0] for name, values in fields.items()}


def safe_next(target: str | None) -> str:
    """Only a dashboard path: never send a signed-in browser to another site."""
    if target and target.startswith(PATH + "/") and not target.startswith("//") \
            and "\\" not in target:
        return target
    return PATH


def keep_token(request: Request, response: Response, token: str) -> None:
    expires = jwt.decode(token, options={"verify_signature": False}).get("exp")
    max_age = None
    if isinstance(expires, (int, float)):
        max_age = max(0, int(expires - datetime.now(timezone.utc).timestamp()))
    response.set_cookie(COOKIE, token, max_age=max_age, path=PATH, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")


def forget_token(response: Response) -> None:
    response.delete_cookie(COOKIE, path=PATH)


def require_script_header(request: Request) -> None:
    if request.headers.get(CSRF_HEADER) != "1":
        raise ApiError(403, "csrf_refused", "此操作只能在督办看板页面内发起。")
