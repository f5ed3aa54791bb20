"""Pure-ASGI middleware: request-body size limit and request metrics."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from api._metrics import Metrics

#: Methods counted under their own label; anything else is ``other``.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

__all__ = ["UNMATCHED", "BodyLimitMiddleware", "HeadMiddleware", "MetricsMiddleware"]


class _TooLarge(Exception):
    pass


async def _send_413(send: Send, limit: int) -> None:
    body = json.dumps(
        {
            "detail": [
                {
                    "loc": ["body"],
                    "msg": f"request body is larger than {limit} bytes",
                    "type": "body_too_large",
                }
            ]
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """Answer 413 to bodies over ``max_bytes`` (by Content-Length, or while streaming).

    A chunked body is only known to be too large while the app reads it; the app then fails
    (FastAPI turns any error of its body reader into a 400), so whatever response it starts
    is replaced by the 413.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope.get("headers", ()):
            if key == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    await _send_413(send, self.max_bytes)
                    return
        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise _TooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:  # the app answers a body it could not read: answer 413 instead
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await _send_413(send, self.max_bytes)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _TooLarge:
            if not started:
                started = True
                await _send_413(send, self.max_bytes)
        except Exception:
            if not exceeded:
                raise
            if not started:  # the app failed on the truncated body: still a 413
                started = True
                await _send_413(send, self.max_bytes)


class HeadMiddleware:
    """Answer ``HEAD`` like ``GET`` without the body (load balancers probe with HEAD).

    The app sees a copy of the scope with method ``GET``; the server's own scope keeps
    ``HEAD`` (uvicorn reads it to send no body), and gets the matched route back for metrics.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "HEAD":
            await self.app(scope, receive, send)
            return
        inner = {**scope, "method": "GET"}

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        try:
            await self.app(inner, receive, headers_only)
        finally:
            for key in ("route", "path_params", "endpoint", "fastapi"):
                if key in inner:
                    scope[key] = inner[key]


#: Route label of requests that matched no route (a fixed value: clients cannot mint series).
UNMATCHED = "unmatched"


def _route_label(scope: Scope) -> str:
    """The matched route's path template (``/v1/devices/{name}``), or :data:`UNMATCHED`.

    Routing leaves the matched route in the scope. FastAPI >= 0.16x includes routers lazily:
    ``scope["route"]`` is then the router's own route (``/devices/{name}``, no ``/v1``) and
    the full template is in ``scope["fastapi"]["effective_route_context"].path``.
    """
    extra = scope.get("fastapi")
    context = extra.get("effective_route_context") if isinstance(extra, dict) else None
    path = getattr(context, "path", None)
    if not isinstance(path, str) or not path:
        path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


class MetricsMiddleware:
    """Count requests and time them per route template, method and status."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        metrics.describe("nas_api_requests_total", "counter", "HTTP requests by route and status.")
        metrics.describe(
            "nas_api_request_duration_seconds", "histogram", "HTTP request latency by route."
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        method = str(scope.get("method", ""))
        if method not in _METHODS:  # any client may send any token: keep the label set bounded
            method = "other"
        t0 = time.perf_counter()

        async def tracking_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            path = _route_label(scope)
            elapsed = time.perf_counter() - t0
            self.metrics.inc(
                "nas_api_requests_total",
                (("method", method), ("route", path), ("status", str(status))),
            )
            self.metrics.observe(
                "nas_api_request_duration_seconds", elapsed, (("method", method), ("route", path))
            )
