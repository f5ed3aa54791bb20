"""The one place where library exceptions become HTTP status codes.

Every error body has FastAPI's validation shape, so clients parse one format:
``{"detail": [{"loc": ["body", "archs", 3], "msg": "...", "type": "invalid_arch"}]}`` --
``loc`` names the offending field (``path``/``query``/``header``/``body`` first). Framework
errors use it too: an unknown route is a 404 at ``["path"]`` (``not_found``), a wrong method a
405 at ``["path"]`` (``method_not_allowed``, with ``Allow``), an unreadable body a 400 at
``["body"]`` (``invalid_body``); an unexpected failure is a 500 at ``["server"]``
(``internal_error``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

if TYPE_CHECKING:
    from fastapi import FastAPI, Request

__all__ = ["ApiError", "field_errors", "install_handlers", "status_of"]

Loc = Sequence[str | int]


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


def status_of(exc: BaseException) -> tuple[int, str] | None:
    """(HTTP status, error type) of a library exception, or ``None`` for anything else."""
    global _TABLE
    if _TABLE is None:
        _TABLE = _library_table()
    for cls, status, kind in _TABLE:
        if isinstance(exc, cls):
            return status, kind
    return None


def _message(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextmanager
def field_errors(*loc: str | int) -> Iterator[None]:
    """Turn library exceptions raised inside the block into an :class:`ApiError` at ``loc``."""
    try:
        yield
    except ApiError:
        raise
    except Exception as exc:
        mapped = status_of(exc)
        if mapped is None:
            raise
        raise ApiError(mapped[0], loc, _message(exc), type=mapped[1]) from exc


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, ApiError):  # pragma: no cover - registered for ApiError only
        raise exc
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):  # pragma: no cover
        raise exc
    errors = [
        {
            "loc": list(e.get("loc", ())),
            "msg": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in exc.errors()
    ]
    return JSONResponse(jsonable_encoder({"detail": errors}), status_code=422)


async def _library_error(_request: Request, exc: Exception) -> JSONResponse:
    mapped = status_of(exc)
    if mapped is None:  # pragma: no cover - only registered for mapped classes
        raise exc
    err = ApiError(mapped[0], ["body"], _message(exc), type=mapped[1])
    return JSONResponse(err.body(), status_code=err.status_code)


#: Methods the app's routes may serve (HEAD is answered wherever GET is).
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

#: (loc, type) of the HTTP errors Starlette/FastAPI raise themselves, by status.
_HTTP_ERRORS: dict[int, tuple[list[str | int], str]] = {
    400: (["body"], "invalid_body"),
    404: (["path"], "not_found"),
    405: (["path"], "method_not_allowed"),
}


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
        body = ApiError(exc.status_code, loc, str(detail), type=kind).body()
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
