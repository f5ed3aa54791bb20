"""A tiny httpx client: upload measurements to a running ``nas serve`` (``nas measure --server``).

Rows are sent in chunks; each chunk carries an ``Idempotency-Key`` derived from its content, so
retrying after a network error never stores anything twice.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from nas import NasError

if TYPE_CHECKING:
    from hwdb import DeviceSpec, MeasurementIn

__all__ = ["ApiClientError", "upload_measurements"]

_FIELDS = (
    "space", "arch", "metric", "median", "mean", "std", "min", "p90", "n_runs", "warmup",
    "protocol", "environment", "source", "workload", "benchmark_index",
)  # fmt: skip
_DEVICE_FIELDS = (
    "name", "family", "hardware", "runtime", "precision", "batch_size", "threads",
    "provenance", "source", "attributes",
)  # fmt: skip


class ApiClientError(NasError):
    """The server rejected a request (``status``: its HTTP status), or could not be reached
    (``status`` None)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _row(row: MeasurementIn | Mapping[str, Any]) -> dict[str, Any]:
    data = dataclasses.asdict(row) if dataclasses.is_dataclass(row) else dict(row)  # type: ignore[arg-type]
    return {k: data[k] for k in _FIELDS if k in data and data[k] is not None}


def _send(client: Any, method: str, url: str, *, retries: int, **kwargs: Any) -> Any:
    """The successful ``httpx.Response`` of ``method url``, with retries."""
    import httpx

    delay = 0.5
    for attempt in range(retries + 1):
        try:
            response = client.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            if attempt == retries:
                raise ApiClientError(f"cannot reach {url}: {exc}") from exc
        else:
            if response.status_code < 500 and response.status_code != 429:
                break
            if attempt == retries:
                break
        time.sleep(delay)
        delay = min(delay * 2, 8.0)
    if response.status_code >= 400:
        try:
            detail = response.json()["detail"][0]
            where = ".".join(str(p) for p in detail["loc"])
            text = f"{where}: {detail['msg']}"
        except (ValueError, KeyError, IndexError, TypeError):
            text = response.text[:200]
        raise ApiClientError(
            f"{method} {url} failed with HTTP {response.status_code}: {text}",
            status=response.status_code,
        )
    return response


def _register(client: Any, base: str, spec: dict[str, Any], *, retries: int) -> None:
    """Create the device on the server, or check the one stored there, which is kept as it is
    (a catalog device keeps its datasheet entry; a team's record is not replaced by the
    measuring machine's).

    Settings the stored device leaves open (an unknown runtime, no thread count: a catalog
    device before its first measurement) are filled in from ``spec``, so a later upload under
    other settings is refused as it would be locally.

    Raises:
        ApiClientError: when the stored device has other settings (runtime, precision, batch,
            threads) than the measured one: its rows would mix two configurations (``status``
            409, a conflict found by the client).
    """
    from hwdb._types import DEVICE_SETTINGS, is_unstated, settings_conflict

    url = f"{base}/v1/devices/{quote(spec['name'], safe='')}"
    try:
        stored = _send(client, "GET", url, retries=retries).json()
    except ApiClientError as exc:
        if exc.status != 404:
            raise
        _send(client, "POST", f"{base}/v1/devices", retries=retries, json=spec)
        return
    fill = {}
    for setting in DEVICE_SETTINGS:
        given, have = spec.get(setting), stored.get(setting)
        if settings_conflict(setting, given, have):
            raise ApiClientError(
                f"device {spec['name']!r} on the server is stored with {setting} {have!r}, not "
                f"{given!r}; its rows would mix two configurations, so upload these under "
                "another --device-name (the server's device is kept as it is)",
                status=409,
            )
        if is_unstated(setting, have) and not is_unstated(setting, given):
            fill[setting] = given
    if fill:
        _send(client, "PATCH", url, retries=retries, json=fill)


def upload_measurements(
    server_url: str,
    api_key: str,
    device_spec: DeviceSpec,
    rows: Sequence[MeasurementIn | Mapping[str, Any]],
    *,
    chunk_size: int = 5000,
    replace: bool = False,
    timeout: float = 120.0,
    retries: int = 3,
) -> dict[str, Any]:
    """Register ``device_spec`` on the server (unless it has that device: then its stored
    record is kept, and must not contradict ``device_spec``'s settings) and upload ``rows`` as
    its measurements.

    Args:
        server_url: Base URL, e.g. ``http://127.0.0.1:8000``.
        api_key: Token from ``nas api-key create``.
        device_spec: The device (a :class:`hwdb.DeviceSpec` or :class:`hwdb.Device`).
        rows: :class:`hwdb.MeasurementIn` objects or dicts with their fields (records from
            :meth:`hwdb.HardwareDB.measurements` work; their ``device`` is ignored).
        chunk_size: Rows per request (the server accepts up to 10,000).
        replace: Overwrite rows the server already has for the same key.
        timeout: Seconds per request.
        retries: Retries on connection errors, 429 and 5xx (idempotent).

    Returns:
        ``{"device", "received", "inserted", "existing", "requests"}`` summed over chunks.

    Raises:
        ValueError: if ``chunk_size`` < 1 or ``server_url`` is not http(s).
        ApiClientError: naming the rejected field, a setting the server's device contradicts,
            or when the server is unreachable.
    """
    import httpx

    if chunk_size < 1:
        raise ValueError(f"`chunk_size` must be greater than or equal to 1, got {chunk_size}.")
    if not server_url.startswith(("http://", "https://")):
        raise ValueError(f"`server_url` must start with http:// or https://, got {server_url!r}.")
    base = server_url.rstrip("/")
    headers = {"X-API-Key": api_key}
    spec = {k: getattr(device_spec, k) for k in _DEVICE_FIELDS}
    name = spec["name"]
    payload = [_row(r) for r in rows]
    total = {"device": name, "received": 0, "inserted": 0, "existing": 0, "requests": 0}
    with httpx.Client(timeout=timeout, headers=headers) as client:
        _register(client, base, spec, retries=retries)
        for start in range(0, len(payload), chunk_size):
            body = {"measurements": payload[start : start + chunk_size], "replace": replace}
            raw = json.dumps(body, sort_keys=True, default=str)
            key = hashlib.sha256(f"{name}\x00{raw}".encode()).hexdigest()
            response = _send(
                client, "POST", f"{base}/v1/devices/{quote(name, safe='')}/measurements",
                retries=retries,
                content=raw.encode(),
                headers={"Idempotency-Key": key, "Content-Type": "application/json"},
            )  # fmt: skip
            out = response.json()
            total["received"] += int(out["received"])
            if response.headers.get("Idempotent-Replayed") == "true":
                # the server's answer to the first identical upload: its rows are stored by now
                total["existing"] += int(out["received"])
            else:
                total["inserted"] += int(out["inserted"])
                total["existing"] += int(out["existing"])
            total["requests"] += 1
    return total
