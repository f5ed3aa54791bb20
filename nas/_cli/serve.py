"""`nas serve` (the REST API under uvicorn) and `nas api-key create|list|revoke`."""

from __future__ import annotations

from typing import Annotated

import typer

from nas._cli._common import (
    check_database_option,
    console,
    err_console,
    open_db,
    print_json,
    print_table,
)
from nas._errors import CLIUsageError

__all__ = ["register"]

#: uvicorn's log levels (another one fails inside uvicorn with a traceback).
_LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")

api_key_app = typer.Typer(
    rich_markup_mode="markdown",
    name="api-key",
    help="API keys of the REST service (stored hashed).",
    no_args_is_help=True,
)


def serve(
    host: Annotated[
        str, typer.Option(help="Interface to bind (127.0.0.1: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    require_key_for_reads: Annotated[
        bool, typer.Option("--require-key-for-reads", help="Also key GET and /v1/predict.")
    ] = False,
    log_level: Annotated[
        str, typer.Option(help=f"uvicorn log level: {', '.join(_LOG_LEVELS)}.")
    ] = "info",
) -> None:
    """Serve the REST API (OpenAPI docs at /docs); writes need an API key."""
    import dataclasses

    import uvicorn

    from api.config import Settings
    from api.main import create_app
    from hwdb import HardwareDB

    if log_level.lower() not in _LOG_LEVELS:  # uvicorn fails with a traceback
        raise CLIUsageError(
            f"--log-level must be one of {', '.join(_LOG_LEVELS)}, got {log_level!r}"
        )
    check_database_option()  # the service would serve an empty database, then lose it
    settings = Settings.from_env()
    if require_key_for_reads:
        settings = dataclasses.replace(settings, require_key_for_reads=True)
    # fail now, in one line, on a database that is missing (as every other command does:
    # `nas hwdb init` creates it) or cannot be opened, and on an address that cannot be bound
    HardwareDB(settings.database_url, create=False).close()
    _check_bind(host, port)
    if host not in ("127.0.0.1", "localhost", "::1"):
        err_console.print(
            f"warning: binding {host}: the API is reachable from other machines", markup=False
        )
    app = create_app(settings)
    uvicorn.run(app, host=host, port=port, log_level=log_level.lower(), access_log=False)


def _check_bind(host: str, port: int) -> None:
    """Raise ``NasError`` (one line) when ``host:port`` cannot be bound: uvicorn would log
    its error among its start-up lines and exit 3."""
    import socket

    from nas import NasError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise NasError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind(address)
        except OSError as exc:
            raise NasError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None


@api_key_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Key name, e.g. the client's host.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create a key and print its token (shown only this once)."""
    with open_db(create=False) as db:
        try:
            key, token = db.create_api_key(name)
        except ValueError as exc:  # a name the database refuses: a usage error
            raise CLIUsageError(str(exc).replace("`name`", "NAME").rstrip(".")) from exc
    if as_json:
        print_json({"name": key.name, "token": token, "created_at": key.created_at})
        return
    console.print(f"API key {key.name!r} created; its token (not shown again):", markup=False)
    typer.echo(token)


@api_key_app.command("list")
def list_keys(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List keys (names and dates; tokens are never stored)."""
    from rich.table import Table

    with open_db(create=False) as db:
        keys = db.list_api_keys()
    rows = [
        {"name": k.name, "created_at": k.created_at, "revoked_at": k.revoked_at, "active": k.active}
        for k in keys
    ]
    if as_json:
        print_json(rows)
        return
    table = Table("name", "created", "revoked")
    for k in keys:
        table.add_row(k.name, f"{k.created_at:%Y-%m-%d %H:%M}", f"{k.revoked_at or '-'}")
    print_table(table)


@api_key_app.command("revoke")
def revoke(name: Annotated[str, typer.Argument(help="Key name.")]) -> None:
    """Revoke a key (requests with it get 401 from now on)."""
    with open_db(create=False) as db:
        key = db.revoke_api_key(name)
    console.print(f"API key {key.name!r} revoked at {key.revoked_at}", markup=False)


def register(app: typer.Typer) -> None:
    """Add `nas serve` and the `nas api-key` group to ``app``."""
    app.command("serve")(serve)
    app.add_typer(api_key_app, name="api-key")
