"""The one place where library exceptions become HTTP status codes.

Every error body has FastAPI's validation shape, so clients parse one format:
``{"detail": [{"loc": ["body", "archs", 3], "msg": "...", "type": "invalid_arch"}]}`` --
``loc`` names the offending field (``path``/``query``/``header``/``body`` first). Framework
errors use it too: an unknown route is a 404 at ``["path"]`` (``not_found``), a wrong method a
405 at ``["path"]`` (``method_not_allowed``, with ``Allow``), an unreadable body a 400 at
``["body"]`` (``invalid_body``); an unexpected failure is a 500 at ``["server"]``
(``internal_error``), and a database the server cannot use a 503 at ``["server", "database"]``
(``storage_unavailable``, ``schema_outdated``: the library's message names the database URL
and the driver's error, so it is logged, not sent; ``query_timeout``, with ``Retry-After``: a
statement PostgreSQL cancelled when it ran past the service's ``statement_timeout``).

Error documents are bounded: a 422 lists at most :data:`MAX_ERRORS` errors (then one entry,
``too_many_errors``, counting those left out), and values a message echoes are cut to
:data:`MAX_ECHO` characters (see :func:`clip_message`).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

if TYPE_CHECKING:
    from fastapi import FastAPI, Request

__all__ = [
    "MAX_ECHO",
    "MAX_ERRORS",
    "MAX_MESSAGE",
    "QUERY_CANCELED_SQLSTATE",
    "QUERY_TIMEOUT_RETRY_S",
    "ApiError",
    "clip",
    "clip_message",
    "field_errors",
    "public_message",
    "install_handlers",
    "query_cancelled",
    "status_of",
]

logger = logging.getLogger(__name__)

Loc = Sequence[str | int]

#: Most characters of a value (a device name, an architecture) echoed in an error message.
MAX_ECHO = 200
#: Most characters of an error message.
MAX_MESSAGE = 2000
#: Most errors listed in a 422 (one more entry says how many were left out).
MAX_ERRORS = 20

#: A quoted value (as ``repr`` or an f-string's ``!r`` writes it) longer than ``MAX_ECHO``.
#: Its quotes are not inside a word, so an apostrophe ("the server's") neither opens nor closes
#: one.
_LONG_QUOTED = re.compile(
    rf"(?:(?<!\w)|(?<=\bb))'[^'\n]{{{MAX_ECHO + 1},}}'(?!\w)"  # also a bytes repr, b'...'
    rf"|(?:(?<!\w)|(?<=\bb))\"[^\"\n]{{{MAX_ECHO + 1},}}\"(?!\w)"
)


def clip(text: str, limit: int = MAX_ECHO) -> str:
    """``text``, or its first ``limit`` characters, an ellipsis and its length when longer."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\u2026 ({len(text)} characters)"


def _clip_quoted(match: re.Match[str]) -> str:
    quoted = match.group(0)
    quote, inner = quoted[0], quoted[1:-1]
    return f"{quote}{inner[:MAX_ECHO]}\u2026{quote} ({len(inner)} characters)"


def clip_message(msg: str) -> str:
    """``msg`` with each quoted value longer than :data:`MAX_ECHO` characters cut to that
    many (an ellipsis and its length follow), and the whole cut to :data:`MAX_MESSAGE`.

    Library messages echo their input (``device 'x' not found``, ``invalid architecture:
    ... in '|...|'``); the request may have sent megabytes of it.
    """
    if len(msg) <= MAX_ECHO:
        return msg
    return clip(_LONG_QUOTED.sub(_clip_quoted, msg), MAX_MESSAGE)


class ApiError(Exception):
    """An HTTP error naming the field it is about.

    Args:
        status_code: HTTP status.
        loc: Where the problem is, e.g. ``("body", "archs", 3)``.
        msg: One-line human-readable message.
        type: Machine-readable error type.
        headers: Extra response headers.
    """

    def __init__(
        self,
        status_code: int,
        loc: Loc,
        msg: str,
        *,
        type: str = "invalid",  # noqa: A002 - mirrors FastAPI's error field
        headers: dict[str, str] | None = None,
    ) -> None:
        msg = clip_message(msg)
        super().__init__(msg)
        self.status_code = status_code
        self.loc = list(loc)
        self.msg = msg
        self.type = type
        self.headers = headers

    def body(self) -> dict[str, Any]:
        """The JSON error body."""
        return {"detail": [{"loc": self.loc, "msg": self.msg, "type": self.type}]}


def _library_table() -> list[tuple[type[Exception], int, str]]:
    """(exception class, status, type), most specific first."""
    from hwdb import (
        ChangedError,
        DuplicateError,
        HwdbError,
        ImportDataError,
        NotFoundError,
        SchemaOutdatedError,
        StorageError,
    )
    from nas import NasError
    from nas.search import DeviceResolutionError, SearchError, StudyMismatchError
    from predictors import NotEnoughDataError, NotFittedError, PredictorError
    from search_spaces import InvalidArchError, SearchSpaceError, UnknownSpaceError

    return [
        (NotFoundError, 404, "not_found"),
        (UnknownSpaceError, 404, "unknown_space"),
        (DeviceResolutionError, 404, "not_found"),
        (DuplicateError, 409, "duplicate"),
        (ChangedError, 409, "conflict"),
        (StudyMismatchError, 409, "conflict"),
        (NotEnoughDataError, 409, "not_enough_data"),
        (NotFittedError, 409, "not_fitted"),
        (SchemaOutdatedError, 503, "schema_outdated"),
        (StorageError, 503, "storage_unavailable"),
        (InvalidArchError, 422, "invalid_arch"),
        (ImportDataError, 422, "invalid_data"),
        (SearchSpaceError, 422, "invalid"),
        (PredictorError, 422, "invalid"),
        (SearchError, 422, "invalid"),
        (HwdbError, 400, "invalid"),
        (NasError, 400, "invalid"),
        (ValueError, 422, "value_error"),
    ]


_TABLE: list[tuple[type[Exception], int, str]] | None = None


#: SQLSTATE of a statement PostgreSQL cancelled (``query_canceled``; psycopg's
#: ``QueryCanceled``): here, one that ran past the service's ``statement_timeout``.
QUERY_CANCELED_SQLSTATE = "57014"
#: ``Retry-After`` (seconds) of a 503 ``query_timeout`` (a lock wait may be over by then).
QUERY_TIMEOUT_RETRY_S = 5


def query_cancelled(exc: BaseException) -> bool:
    """Whether ``exc``, or an exception it was raised from (``raise ... from``: hwdb's
    ``StorageError`` wraps SQLAlchemy's ``OperationalError``, which wraps the driver's error),
    is a statement PostgreSQL cancelled (SQLSTATE 57014)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for err in (current, getattr(current, "orig", None)):  # .orig: SQLAlchemy's DBAPIError
            if getattr(err, "sqlstate", None) == QUERY_CANCELED_SQLSTATE:
                return True
        current = current.__cause__
    return False


def status_of(exc: BaseException) -> tuple[int, str] | None:
    """(HTTP status, error type) of a library exception, or ``None`` for anything else.

    A database error of a statement PostgreSQL cancelled (:func:`query_cancelled`) is
    ``(503, "query_timeout")``.
    """
    global _TABLE
    if _TABLE is None:
        _TABLE = _library_table()
    for cls, status, kind in _TABLE:
        if isinstance(exc, cls):
            if kind == "storage_unavailable" and query_cancelled(exc):
                return 503, "query_timeout"
            return status, kind
    return (503, "query_timeout") if query_cancelled(exc) else None


def _message(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


#: What a client reads of a database the server cannot use, by error type: the library's
#: message names the database URL (host, port, user) and the driver's error.
_DATABASE_ERRORS = {
    "storage_unavailable": "the database is unavailable; try again later",
    "schema_outdated": "the database's schema does not match this server's version",
    "query_timeout": "the database query took longer than this server's time limit "
    "(statement timeout) and was cancelled; try again later, or ask for less",
}
#: What the server's log adds for its operator.
_OPERATOR_HINTS = {
    "query_timeout": " (if this was a large read that must succeed, e.g. the first "
    "meta-training of a big space, raise NAS_API_STATEMENT_TIMEOUT_S, or run `nas predictor "
    "train` from the command line, whose connections have no limit)",
}
#: Headers of those errors.
_DATABASE_HEADERS = {"query_timeout": {"Retry-After": str(QUERY_TIMEOUT_RETRY_S)}}


def public_message(exc: BaseException) -> str:
    """The first line of ``exc``'s message as a client may read it: for a database error
    (host, user, driver text) the public sentence instead, the full message logged."""
    mapped = status_of(exc)
    if mapped is None:
        return clip_message(_message(exc))
    return _mapped_error(exc, *mapped, []).msg


def _mapped_error(exc: BaseException, status: int, kind: str, loc: Loc) -> ApiError:
    """The :class:`ApiError` of a library exception mapped to ``(status, kind)``: at ``loc``,
    or, for a database error, at ``["server", "database"]`` with a message that hides the
    library's (logged at warning level instead)."""
    public = _DATABASE_ERRORS.get(kind)
    if public is None:
        return ApiError(status, loc, _message(exc), type=kind)
    hint = _OPERATOR_HINTS.get(kind, "")
    logger.warning("%d %s: %s%s", status, kind, exc, hint)
    headers = _DATABASE_HEADERS.get(kind)
    return ApiError(
        status, ["server", "database"], public, type=kind,
        headers=dict(headers) if headers is not None else None,
    )  # fmt: skip


@contextmanager
def field_errors(*loc: str | int) -> Iterator[None]:
    """Turn library exceptions raised inside the block into an :class:`ApiError` at ``loc``
    (a database error at ``["server", "database"]``)."""
    try:
        yield
    except ApiError:
        raise
    except Exception as exc:
        mapped = status_of(exc)
        if mapped is None:
            raise
        raise _mapped_error(exc, *mapped, loc) from exc


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, ApiError):  # pragma: no cover - registered for ApiError only
        raise exc
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)


def _clip_loc(loc: Sequence[Any]) -> list[str | int]:
    """``loc`` with each string (e.g. a key of a JSON object the client sent) clipped."""
    return [p if isinstance(p, int) else clip(str(p)) for p in loc]


def _detail(error: Mapping[str, Any]) -> dict[str, Any]:
    """One error of a 422 in the documented shape; strings of its ``loc`` and the values its
    message echoes are clipped."""
    return {
        "loc": _clip_loc(error.get("loc", ())),
        "msg": clip_message(str(error.get("msg", ""))),
        "type": str(error.get("type", "")),
    }


def _common_prefix(a: list[Any], b: Sequence[Any]) -> list[Any]:
    """The longest common prefix of two ``loc`` lists."""
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def _batch_too_large(request: Request, error: Mapping[str, Any]) -> JSONResponse:
    """The 413 of a list longer than :data:`api.schemas.MAX_LIST_ITEMS` (refused before its
    items are validated), naming the configured cap (as the routes' 413 does) when lower."""
    ctx = error.get("ctx") or {}
    limit = ctx.get("limit")
    settings = getattr(getattr(request.app.state, "services", None), "settings", None)
    cap = getattr(settings, str(ctx.get("setting", "")), None)
    if isinstance(cap, int) and isinstance(limit, int) and cap < limit:
        limit = cap
    msg = f"at most {limit} {ctx.get('what', 'items')} per request, got {ctx.get('got')}"
    loc = _clip_loc(error.get("loc", ()))
    return JSONResponse(ApiError(413, loc, msg, type="batch_too_large").body(), status_code=413)


def _not_json(request: Request, errors: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the body was refused as a whole because it was not sent as JSON (FastAPI
    parses a body as JSON only under a JSON content type; any other reaches the model as
    bytes, which it refuses at ``["body"]``)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        return False
    return any(tuple(e.get("loc", ())) == ("body",) and e.get("type") != "missing" for e in errors)


def _unsupported_media_type(request: Request) -> JSONResponse:
    """The 415 of a body sent without a JSON content type, naming the header."""
    got = request.headers.get("content-type")
    what = f"got {clip(got)!r}" if got else "none was sent"
    msg = f"the request body must be JSON, sent with Content-Type: application/json ({what})"
    err = ApiError(415, ["header", "content-type"], msg, type="unsupported_media_type")
    return JSONResponse(err.body(), status_code=415)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """A 422 listing the first :data:`MAX_ERRORS` errors, then one entry (``too_many_errors``,
    at the ``loc`` all the others share) counting the others; a 413 for a list of too many
    items. A list's validator may have counted errors it left out already
    (``too_many_errors`` with ``ctx.left_out``, see ``api.schemas``)."""
    if not isinstance(exc, RequestValidationError):  # pragma: no cover
        raise exc
    errors = exc.errors()
    if _not_json(request, errors):
        return _unsupported_media_type(request)
    detail: list[dict[str, Any]] = []
    left_out = 0
    left_loc: list[Any] | None = None
    for error in errors:
        if error.get("type") == "batch_too_large":
            return _batch_too_large(request, error)
        counted = error.get("type") == "too_many_errors"
        if not counted and len(detail) < MAX_ERRORS:
            detail.append(_detail(error))
            continue
        left_out += int((error.get("ctx") or {}).get("left_out", 0)) if counted else 1
        loc = error.get("loc", ())
        left_loc = list(loc) if left_loc is None else _common_prefix(left_loc, loc)
    if left_out:
        n = len(detail) + left_out
        detail.append(
            {
                "loc": _clip_loc(left_loc or []),
                "msg": f"{left_out} more error{'s' if left_out > 1 else ''} not listed "
                f"(the first {len(detail)} of {n} are)",
                "type": "too_many_errors",
            }
        )
    return JSONResponse(jsonable_encoder({"detail": detail}), status_code=422)


async def _library_error(_request: Request, exc: Exception) -> JSONResponse:
    mapped = status_of(exc)
    if mapped is None:  # pragma: no cover - only registered for mapped classes
        raise exc
    err = _mapped_error(exc, *mapped, ["body"])
    return JSONResponse(err.body(), status_code=err.status_code, headers=err.headers)


#: Methods the app's routes may serve (HEAD is answered wherever GET is).
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

#: (loc, type) of the HTTP errors Starlette/FastAPI raise themselves, by status.
_HTTP_ERRORS: dict[int, tuple[list[str | int], str]] = {
    400: (["body"], "invalid_body"),
    404: (["path"], "not_found"),
    405: (["path"], "method_not_allowed"),
}


def _unparsable_body(exc: BaseException) -> str | None:
    """Why FastAPI could not parse a JSON body (its 400 says only "There was an error
    parsing the body"), from the exception it raised that 400 from; ``None``: unknown."""
    cause = exc.__cause__
    if isinstance(cause, RecursionError):
        return "the JSON body is nested too deeply to parse"
    if isinstance(cause, UnicodeDecodeError):
        return f"the body is not valid UTF-8 JSON ({clip(str(cause))})"
    if isinstance(cause, ValueError) and "integer string conversion" in str(cause):
        return f"the JSON body holds an integer of more than {sys.get_int_max_str_digits()} digits"
    return None


def _allowed_methods(request: Request) -> str | None:
    """Every method some route of the app serves at the request's path (Starlette's 405
    names only the first route that matches the path, e.g. ``GET`` of ``/v1/devices``).
    Each method is tried against the app's routes as they match requests, so included
    routers are searched as the router itself would search them."""
    from starlette.routing import Match

    methods = set()
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            methods.add(method)
    if "GET" in methods:  # ``HeadMiddleware`` answers HEAD wherever GET is served
        methods.add("HEAD")
    return ", ".join(sorted(methods)) or None


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette/FastAPI ``HTTPException`` (unknown route, wrong method, unreadable body) in
    the documented shape, keeping its status and headers (e.g. ``Allow`` of a 405, listing
    every method of the path)."""
    if not isinstance(exc, StarletteHTTPException):  # pragma: no cover
        raise exc
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
    detail: Any = exc.detail
    if isinstance(detail, list) and all(
        isinstance(d, dict) and {"loc", "msg", "type"} <= set(d) for d in detail
    ):
        body: dict[str, Any] = {"detail": detail}
    else:
        loc, kind = _HTTP_ERRORS.get(exc.status_code, (["body"], "http_error"))
        msg = (_unparsable_body(exc) if exc.status_code == 400 else None) or str(detail)
        body = ApiError(exc.status_code, loc, msg, type=kind).body()
    if exc.status_code in (204, 304):  # pragma: no cover - no body allowed
        return JSONResponse(None, status_code=exc.status_code, headers=headers)
    return JSONResponse(jsonable_encoder(body), status_code=exc.status_code, headers=headers)


async def _server_error(_request: Request, _exc: Exception) -> JSONResponse:
    """Unexpected exceptions: a JSON 500 in the documented shape (the traceback is logged)."""
    body = ApiError(500, ["server"], "internal server error", type="internal_error").body()
    return JSONResponse(body, status_code=500)


def install_handlers(app: FastAPI) -> None:
    """Register the exception handlers on ``app``."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _server_error)
    seen: set[type[Exception]] = set()
    for cls, _status, _kind in _library_table():
        if cls not in seen and cls is not ValueError:
            seen.add(cls)
            app.add_exception_handler(cls, _library_error)
