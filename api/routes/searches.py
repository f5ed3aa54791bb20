"""``POST /v1/searches``, ``GET/DELETE /v1/searches/{id}``: NSGA-II searches in the background."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, status

from api._searches import with_defaults
from api.deps import (
    DbDep,
    ReadAccess,
    ServicesDep,
    SettingsDep,
    WriteKey,
    require_key_to_filter,
)
from api.errors import ApiError
from api.routes.predictions import _check_names, require_space_data
from api.schemas import ErrorPublic, SearchCreate, SearchesPublic, SearchPublic
from hwdb import ApiKey

__all__ = ["router"]

router = APIRouter(prefix="/searches", tags=["searches"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorPublic} for s in (401, 403, 404, 422, 429)
}


def _check(body: SearchCreate, db: DbDep, max_trials: int) -> None:
    """What the background search would fail on, for a request with its defaults filled in
    (:func:`api._searches.with_defaults`)."""
    from hwdb import NotFoundError
    from nas.search import PROXIES

    _check_names(body.space, body.predictor)
    assert body.trials is not None  # filled by with_defaults
    if body.trials > max_trials:
        raise ApiError(
            422, ["body", "trials"], f"must be at most {max_trials}, got {body.trials}",
            type="less_than_equal",
        )  # fmt: skip
    kind, _, proxy = body.accuracy.partition(":")
    if kind == "proxy" and proxy and proxy not in PROXIES:
        raise ApiError(
            422, ["body", "accuracy"],
            f"unknown proxy {proxy!r} (known: {', '.join(sorted(PROXIES))})", type="unknown_proxy",
        )  # fmt: skip
    for i, device in enumerate(body.devices):
        try:
            db.get_device(device)
        except NotFoundError as exc:
            raise ApiError(422, ["body", "devices", i], str(exc), type="unknown_device") from exc
    _check_data(body, db, kind)
    if kind == "short-train":
        _check_short_train(body.space)
    if body.choices:
        from search_spaces import get_space, restrict_space

        try:
            restrict_space(get_space(body.space), body.choices)
        except ValueError as exc:
            raise ApiError(422, ["body", "choices"], str(exc), type="bad_choices") from exc
    if isinstance(body.budget_ms, dict):
        extra = sorted(set(body.budget_ms) - set(body.devices))
        if extra:
            raise ApiError(
                422, ["body", "budget_ms", extra[0]], "names a device that is not searched",
                type="unknown_device",
            )  # fmt: skip


def _check_data(body: SearchCreate, db: DbDep, kind: str) -> None:
    """What the background search would fail on, checked up front from the database."""
    from nas.search import has_accuracy_table

    _check_devices(body, db)
    default_dataset = SearchCreate.model_fields["dataset"].default
    if kind == "auto" and body.dataset != default_dataset:  # auto found no table of it
        raise ApiError(
            422, ["body", "dataset"],
            f"no test_accuracy for dataset {body.dataset!r} in space {body.space!r}, so the "
            f"default accuracy is {body.accuracy!r}, which reads no dataset; import the table "
            "first (`nas hwdb import ...`) or leave dataset out",
            type="no_accuracy_table",
        )  # fmt: skip
    if kind == "table":
        require_space_data(db, body.space, status=422, kind="no_data")
        if not has_accuracy_table(db, space=body.space, dataset=body.dataset):
            # a dataset the request names is the field at fault; else the table objective
            field = "dataset" if body.dataset != default_dataset else "accuracy"
            raise ApiError(
                422, ["body", field],
                f"no test_accuracy for dataset {body.dataset!r} in space {body.space!r}; "
                "import it first (`nas hwdb import ...`) or use accuracy 'proxy'",
                type="no_accuracy_table",
            )  # fmt: skip
    elif body.dataset != default_dataset:
        raise ApiError(
            422, ["body", "dataset"],
            f"only accuracy 'table' reads a dataset ({body.accuracy!r} does not); "
            "leave it out",
            type="unused_dataset",
        )  # fmt: skip


def _check_short_train(space: str) -> None:
    """Short training is a character-level language model: a vision space cannot take it."""
    from nas.search._objectives import is_language_model_space, language_model_spaces
    from search_spaces import get_space

    if not is_language_model_space(get_space(space)):
        raise ApiError(
            422, ["body", "accuracy"],
            "short-train trains a character-level language model: it needs a language-model "
            f"space ({', '.join(language_model_spaces())}), not {space!r}; use proxy or table "
            "(or leave accuracy out)",
            type="unsupported_accuracy",
        )  # fmt: skip


def _check_devices(body: SearchCreate, db: DbDep) -> None:
    """Every (known) device must have the measurements its predictor adapts to, or be a
    catalog device not measured in the space (searched zero-shot, as the CLI does); a
    measured device also needs the space's data to meta-train on."""
    from predictors import MIN_ADAPT_MEASUREMENTS, catalog_only, latency_metric

    metric = latency_metric(body.space)
    zero_shot = {d for d in body.devices if catalog_only(db, space=body.space, device=d)}
    measured = [(i, d) for i, d in enumerate(body.devices) if d not in zero_shot]
    if measured:
        require_space_data(db, body.space, status=422, kind="no_data")
    for i, device in measured:
        n = db.count_measurements(
            space=body.space, device=device, metric=metric, distinct_archs=True
        )
        if n < MIN_ADAPT_MEASUREMENTS:
            raise ApiError(
                409, ["body", "devices", i],
                f"device {device!r} has {n} measurements in {body.space!r}; a search adapts "
                f"its predictor to at least {MIN_ADAPT_MEASUREMENTS} (upload measurements first)",
                type="not_enough_data",
            )  # fmt: skip


@router.post(
    "", response_model=SearchPublic, status_code=status.HTTP_202_ACCEPTED, responses=_ERRORS
)
def create_search(
    body: SearchCreate, db: DbDep, services: ServicesDep, settings: SettingsDep, key: WriteKey
) -> dict[str, Any]:
    """Queue a search; poll ``GET /v1/searches/{id}`` for progress and the Pareto front.

    Defaults are those of `nas search`. ``accuracy`` ``auto`` (the default) is ``table`` when
    the database holds ``test_accuracy`` of the space on ``dataset``, else SynFlow scored at
    an image side of at most 64 px and batch 8 (about 0.15 s per MnasNet architecture on one
    CPU core; an explicit ``"proxy:synflow"`` scores at the space's full resolution, 224 px
    for MnasNet, and batch 32). Leaving ``trials`` / ``population`` out gives 1000 / 50 with a
    table and 200 / 20 with any other objective (trials at most the server's limit). The
    response's ``request`` holds the values the search runs with (``auto`` reads ``table``
    there when it found one).

    An explicit objective can cost far more: ``proxy`` (the vote of SynFlow, jacob_cov and
    SNIP at full resolution) first scores a calibration set of 32 random architectures, 96
    full-size proxy computations (many minutes on a small CPU) before its first architecture;
    ``short-train`` trains each architecture for 300 steps and takes only a language-model
    space (``nemotron_flash``). A cancelled search stops before the next model its objective
    builds.
    """
    _check_names(body.space, body.predictor)
    body = with_defaults(body, db=db, max_trials=settings.max_search_trials)
    _check(body, db, settings.max_search_trials)
    job = services.searches.submit(body, db=db, cache=services.cache, owner=key.name)
    if job is None:
        mine = services.searches.active(key.name)
        msg = (
            f"this API key already has {mine} searches queued or running (at most "
            f"{settings.max_searches_per_key} per key)"
            if mine >= settings.max_searches_per_key
            else f"{settings.max_active_searches} searches are already queued or running"
        )
        raise ApiError(
            429, ["body"], msg, type="too_many_searches", headers={"Retry-After": "30"}
        )  # fmt: skip
    return job.public()


def _shown(out: dict[str, Any], access: ApiKey | None) -> dict[str, Any]:
    """``out`` (a search's public fields) as ``access`` may read it: an anonymous reader (no
    API key, on a server whose reads are open) gets ``owner`` ``null``, since API key names
    say who works on what."""
    if access is None:
        out["owner"] = None
    return out


@router.get("", response_model=SearchesPublic, responses={401: {"model": ErrorPublic}})
def read_searches(
    services: ServicesDep,
    access: ReadAccess,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    state: Annotated[
        Literal["queued", "running", "completed", "failed", "cancelled"] | None,
        Query(alias="status", description="Only searches in this state."),
    ] = None,
    owner: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Only searches submitted with the API key of this name (a request "
            "without an API key may not filter by owner).",
        ),
    ] = None,
) -> dict[str, Any]:
    """Searches this server remembers, most recent first, without their Pareto fronts
    (``front_size`` says how many points ``GET /v1/searches/{id}`` returns).

    Each search's ``owner`` (the name of the API key that submitted it) is shown to requests
    with an API key only: without one it is ``null``, and filtering by ``owner`` is a 401.
    """
    if owner is not None:  # the filter would tell whose searches they are
        require_key_to_filter(access, "owner")
    jobs, total = services.searches.recent(limit=limit, status=state, owner=owner)
    data = [_shown(j.public(front=False), access) for j in jobs]
    return {"data": data, "count": total, "limit": limit}


@router.get("/{search_id}", response_model=SearchPublic, responses={404: {"model": ErrorPublic}})
def read_search(search_id: str, services: ServicesDep, access: ReadAccess) -> dict[str, Any]:
    """Status, progress and (when completed or cancelled) the Pareto front of a search; its
    ``owner`` is ``null`` for a request without an API key.

    Searches survive a restart of the server (each one's record is ``job.json`` in its folder
    of the server's ``NAS_API_SEARCH_OUT_DIR``); one that was queued or running when the server
    died reads ``cancelled``, with an ``error`` saying so and no front."""
    job = services.searches.get(search_id)
    if job is None:
        raise ApiError(
            404, ["path", "search_id"], f"search {search_id!r} not found", type="not_found"
        )
    return _shown(job.public(), access)


@router.delete("/{search_id}", response_model=SearchPublic, responses=_ERRORS)
def cancel_search(search_id: str, services: ServicesDep, key: WriteKey) -> dict[str, Any]:
    """Cancel a queued or running search; only the API key that submitted it may.

    A running search stops before the next model its accuracy objective builds (a proxy of
    one architecture, the proxy vote's calibration included) or its next training step, so
    within about one proxy computation; the response may still read ``running`` until then.
    Once ``cancelled`` it shows the front of the trials it finished.
    """
    job = services.searches.get(search_id)
    if job is None:
        raise ApiError(
            404, ["path", "search_id"], f"search {search_id!r} not found", type="not_found"
        )
    if job.owner is not None and job.owner != key.name:
        raise ApiError(
            403, ["header", "X-API-Key"],
            f"search {search_id!r} was submitted with another API key; only that key can "
            "cancel it",
            type="not_owner",
        )  # fmt: skip
    services.searches.cancel(search_id)
    return job.public()
