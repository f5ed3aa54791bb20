"""Accuracy objectives of the search: table lookup, zero-cost proxies, short training, user code."""

from __future__ import annotations

import importlib
import math
import os
import sys
import sysconfig
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nas._errors import NasError
from nas._threads import torch_threads
from nas.search._errors import SearchError
from nas.search._memory import MemoryGuard

if TYPE_CHECKING:
    import pandas as pd
    import torch
    from torch import nn

    from hwdb import HardwareDB
    from nas.search._types import AccuracyObjective
    from search_spaces import SearchSpace

__all__ = [
    "AUTO_PROXY",
    "PROXY_BUDGET",
    "TABLE_BUDGET",
    "EvaluationCancelled",
    "ProxyAccuracy",
    "ShortTrainAccuracy",
    "TableAccuracy",
    "UserFunctionAccuracy",
    "default_budget",
    "has_accuracy_table",
    "is_language_model_space",
    "language_model_spaces",
    "make_accuracy_objective",
    "stdlib_corpus",
]

#: A callback an objective polls while it works; ``True`` stops the evaluation.
StopFn = Callable[[], bool]


class EvaluationCancelled(NasError):
    """Raised by an objective's ``evaluate`` when its ``should_stop`` callback returns
    ``True`` (e.g. the API's search was cancelled); nothing of the batch is returned."""


def _stop_if(should_stop: StopFn | None, what: str) -> None:
    """Raise :class:`EvaluationCancelled` when ``should_stop()`` says so."""
    if should_stop is not None and should_stop():
        raise EvaluationCancelled(f"{what} was cancelled")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _all_failed(name: str, n: int, why: str) -> SearchError:
    """The error of an objective that failed on every architecture of a batch and has scored
    none so far: it is broken for this space, and a search of failed trials would end with an
    empty front."""
    return SearchError(
        f"accuracy objective {name!r} failed on all {n} architectures of a batch and has "
        f"scored none so far ({why})"
    )


def _warn_failure(name: str, text: str) -> None:
    warnings.warn(
        f"accuracy objective {name!r} failed: {text}; architectures it fails on become "
        "failed trials",
        RuntimeWarning,
        stacklevel=4,
    )


class TableAccuracy:
    """Accuracy looked up in a table (e.g. NATS-Bench CIFAR-10 test accuracy on nasbench201).

    Architectures missing from the table score NaN (their trials are recorded as failed).

    Args:
        table: Accuracy by canonical architecture string.
        name: Objective name (default ``"table"``).
    """

    def __init__(self, table: pd.Series | dict[str, float], *, name: str = "table") -> None:
        values = {
            str(k): float(v)
            for k, v in dict(table).items()
            if v is not None and math.isfinite(float(v))
        }
        if not values:
            raise SearchError(
                "the accuracy table is empty (import accuracies with `nas hwdb import ...`)"
            )
        self.name, self._values = name, values

    @classmethod
    def from_db(
        cls,
        db: HardwareDB,
        *,
        space: str | SearchSpace[Any],
        dataset: str,
        metric: str = "test_accuracy",
    ) -> TableAccuracy:
        """Load ``db.accuracy_table(space, dataset=dataset, metric=metric)`` (``space``: a
        name or a space object)."""
        from hwdb import NotFoundError

        name = space if isinstance(space, str) else space.name
        try:
            table = db.accuracy_table(name, dataset=dataset, metric=metric)
        except NotFoundError:  # the space has no rows at all in this database
            table = []
        if len(table) == 0:
            raise SearchError(
                f"no {metric} for dataset {dataset!r} in space {name!r}; import it first "
                "(`nas hwdb import ...`) or use --accuracy proxy"
            )
        return cls(table, name=f"table:{dataset}")

    def __len__(self) -> int:
        return len(self._values)

    def evaluate(self, archs: Sequence[str]) -> np.ndarray:
        """Table values (NaN where missing)."""
        return np.array([self._values.get(a, math.nan) for a in archs], dtype=float)


#: Peak bytes per parameter of each proxy's evaluation: SynFlow measured (28.5 B with the
#: process, ``nemotron_flash`` at ``hidden`` 512, 122M parameters: float64 weights, their signs
#: and gradients); the others counted from what they allocate (fp32 weights, gradients, one
#: product) with some headroom.
PROXY_BYTES_PER_PARAM = {
    "synflow": 28.0,
    "snip": 16.0,
    "grad_norm": 16.0,
    "jacob_cov": 12.0,
    "naswot": 8.0,
    "params": 8.0,
    "flops": 8.0,
}


class ProxyAccuracy:
    """A zero-cost proxy as the accuracy objective (see :mod:`nas.search._proxies`).

    Heavy-tailed positive proxies (synflow, snip, grad_norm, params, flops) are reported as
    ``log1p(value)``. ``vote`` is the mean, over synflow, jacob_cov and snip, of the share of a
    fixed seeded calibration set of random architectures that score below the candidate: a
    rank ensemble (Abdelfattah et al., ICLR 2021) that does not drift as the search proceeds.

    Args:
        space: The search space.
        proxy: One of :data:`nas.search.PROXIES`.
        batch_size: Random batch size.
        seed: Seed of the batch, weight init and calibration set.
        calibration: Calibration architectures for ``vote``.
        resolution: Image side for vision spaces (default: the space's default workload).
        device: Torch device.
        threads: Torch intra-op threads while scoring (``None``: torch's setting). One by
            default: on a 2-core machine shared with one other busy process, SynFlow on
            MnasNet took 0.3-0.4 s per architecture on one thread and 5-10 s on two.
        should_stop: Polled before each model the objective builds (one per proxy and
            architecture, the ``vote``'s calibration set included); when it returns ``True``,
            ``evaluate`` raises :class:`EvaluationCancelled`.

    Raises:
        SearchError: From ``evaluate``, when every proxy raised on every architecture of a
            batch and none has been scored so far (e.g. a space whose inputs the proxy cannot
            take): the first exception is named.
    """

    _LOG = frozenset({"synflow", "snip", "grad_norm", "params", "flops"})

    def __init__(
        self,
        space: SearchSpace[Any] | str,
        proxy: str = "vote",
        *,
        batch_size: int = 32,
        seed: int = 0,
        calibration: int = 32,
        resolution: int | None = None,
        device: str = "cpu",
        threads: int | None = 1,
        should_stop: StopFn | None = None,
    ) -> None:
        from nas.search._proxies import PROXIES, VOTE_MEMBERS

        if proxy not in PROXIES:
            raise ValueError(f"`proxy` must be one of {', '.join(PROXIES)}, got {proxy!r}.")
        if calibration < 2:
            raise ValueError("`calibration` must be greater than or equal to 2.")
        for arg, value, least in (("batch_size", batch_size, 1), ("resolution", resolution, 1)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                      or value < least):  # fmt: skip
                raise ValueError(f"`{arg}` must be an integer >= {least}, got {value!r}.")
        if isinstance(space, str):
            from search_spaces import get_space

            space = get_space(space)
        self.space, self.proxy, self.name = space, proxy, f"proxy:{proxy}"
        self.batch_size, self.seed, self.device, self.resolution = (
            batch_size,
            seed,
            device,
            resolution,
        )
        self.calibration = calibration
        self.threads = _check_threads(threads)
        self.should_stop = should_stop
        self._calib: dict[str, np.ndarray] | None = None
        self._scored = 0  # architectures scored by at least one proxy that did not raise
        self._raised: list[str] = []  # architectures of this batch every proxy raised on
        self._first_error: str | None = None
        members = VOTE_MEMBERS if proxy == "vote" else (proxy,)
        need = max(PROXY_BYTES_PER_PARAM.get(m, 16.0) for m in members)
        self.memory = MemoryGuard(space, bytes_per_param=need, what=self.name, device=device)

    def raw(self, arch: str, names: Sequence[str]) -> dict[str, float]:
        """Raw base-proxy values of one architecture (NaN when it does not fit in memory).

        Raises:
            EvaluationCancelled: When ``should_stop`` returns ``True`` before a model is built.
        """
        return self._raw(arch, names)[0]

    def _raw(self, arch: str, names: Sequence[str]) -> tuple[dict[str, float], list[str]]:
        """``raw`` and the first line of each exception a proxy raised."""
        from nas.search._proxies import compute_proxies, make_batch

        _stop_if(self.should_stop, f"{self.name} on {arch}")
        if not self.memory.fits(arch):
            return dict.fromkeys(names, math.nan), []
        obj = self.space.from_string(arch)
        errors: list[str] = []

        def build() -> nn.Module:
            _stop_if(self.should_stop, f"{self.name} on {arch}")
            return self.space.build(obj)

        values = compute_proxies(
            build,
            lambda m: make_batch(
                self.space,
                m,
                batch_size=self.batch_size,
                seed=self.seed,
                resolution=self.resolution,
                device=self.device,
            ),
            names,
            seed=self.seed,
            device=self.device,
            on_error=lambda name, exc: errors.append(f"{name} raised {_first_line(exc)}"),
        )
        return values, errors

    def _calibration(self) -> dict[str, np.ndarray]:
        from nas.search._proxies import VOTE_MEMBERS

        if self._calib is None:
            rng = np.random.default_rng(self.seed)
            archs = [self.space.to_string(self.space.random(rng)) for _ in range(self.calibration)]
            rows = [self.raw(a, VOTE_MEMBERS) for a in archs]
            self._calib = {m: np.array([r[m] for r in rows]) for m in VOTE_MEMBERS}
        return self._calib

    def _score(self, arch: str) -> float:
        from nas.search._proxies import VOTE_MEMBERS

        names = VOTE_MEMBERS if self.proxy == "vote" else (self.proxy,)
        calib = self._calibration() if self.proxy == "vote" else {}
        vals, errors = self._raw(arch, names)
        if len(errors) == len(names):  # every proxy raised: a failed trial, not a low score
            self._failed(arch, errors[0])
            return math.nan
        self._scored += 1
        if self.proxy != "vote":
            v = vals[self.proxy]
            return (
                float(np.log1p(max(v, 0.0))) if self.proxy in self._LOG and math.isfinite(v) else v
            )
        shares = []
        for m in VOTE_MEMBERS:
            ref = calib[m][np.isfinite(calib[m])]
            v = vals[m] if math.isfinite(vals[m]) else -math.inf
            shares.append(float(np.mean(ref < v)) if ref.size else 0.0)
        return float(np.mean(shares))

    def _failed(self, arch: str, error: str) -> None:
        self._raised.append(arch)
        if self._first_error is None:
            self._first_error = f"{error} on {arch}"
            _warn_failure(self.name, self._first_error)

    def evaluate(self, archs: Sequence[str]) -> np.ndarray:
        """Proxy score of each architecture (NaN where the proxy is undefined or raised).

        Raises:
            EvaluationCancelled: When ``should_stop`` returns ``True``.
            SearchError: When every proxy raised on every architecture of the batch and
                none has been scored so far.
        """
        self._raised = []
        with torch_threads(self.threads):
            out = np.array([self._score(a) for a in archs], dtype=float)
        if archs and len(self._raised) == len(archs) and self._scored == 0:
            raise _all_failed(self.name, len(archs), self._first_error or "")
        return out


def _check_threads(threads: int | None) -> int | None:
    if threads is not None and threads < 1:
        raise ValueError(f"`threads` must be greater than or equal to 1, got {threads}.")
    return threads


def stdlib_corpus(max_bytes: int = 2_000_000) -> bytes:
    """Concatenated Python standard-library sources (sorted, deterministic; no downloads)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    chunks, total = [], 0
    for path in sorted(root.glob("*.py")):
        data = path.read_bytes()
        chunks.append(data)
        total += len(data)
        if total >= max_bytes:
            break
    if not chunks:
        raise SearchError(f"no Python sources found under {root}")
    return b"".join(chunks)[:max_bytes]


class ShortTrainAccuracy:
    """Next-character accuracy (%) after a short character-level LM training run.

    Text is the Python standard library's own sources (present on every machine); 90% trains,
    the last 10% validates. Bytes are the tokens (ids < 256). Works with models returning
    per-position logits ``(B, T, V)`` or last-position logits ``(B, V)``.

    Args:
        space: A language-model search space (``nemotron_flash``; see
            :func:`is_language_model_space`), or any space when ``build`` is given.
        steps: Optimiser steps (AdamW).
        seq_len: Characters per sequence.
        batch_size: Sequences per step.
        lr: Learning rate.
        seed: Seed of batches and weight init.
        device: Torch device.
        build: Optional model builder ``f(arch_string) -> nn.Module`` (default ``space.build``).
            The memory guard still sizes an architecture by ``space.profile``.
        threads: Torch intra-op threads while training (``None``: torch's setting; see
            :class:`ProxyAccuracy`).
        should_stop: Polled before each architecture and each optimiser step; when it
            returns ``True``, ``evaluate`` raises :class:`EvaluationCancelled`.

    Raises:
        ValueError: If ``space`` is not a language-model space and no ``build`` is given (a
            vision model cannot take the token ids).
    """

    def __init__(
        self,
        space: SearchSpace[Any],
        *,
        steps: int = 300,
        seq_len: int = 64,
        batch_size: int = 16,
        lr: float = 1e-3,
        seed: int = 0,
        device: str = "cpu",
        build: Callable[[str], nn.Module] | None = None,
        threads: int | None = 1,
        should_stop: StopFn | None = None,
    ) -> None:
        if build is None and not is_language_model_space(space):
            lms = ", ".join(language_model_spaces())
            raise ValueError(
                f"`space` must be a language-model space ({lms}) for short training, got "
                f"{space.name!r}."
            )
        for arg, value in (("steps", steps), ("seq_len", seq_len), ("batch_size", batch_size)):
            if value < 1:
                raise ValueError(f"`{arg}` must be greater than or equal to 1.")
        if not lr > 0:
            raise ValueError("`lr` must be positive.")
        self.space, self.name = space, f"short-train:{steps}"
        self.steps, self.seq_len, self.batch_size, self.lr = steps, seq_len, batch_size, lr
        self.seed, self.device = seed, device
        self.threads = _check_threads(threads)
        self.should_stop = should_stop
        self._build = build or (lambda a: space.build(space.from_string(a)))
        self._data: np.ndarray | None = None
        self._scored = 0  # finite accuracies so far
        self._first_error: str | None = None
        self._cost_noted = False  # the cost of one training was reported (_note_cost)
        # fp32 weights, gradients and AdamW's two moments (16 B) plus temporaries
        self.memory = MemoryGuard(space, bytes_per_param=20.0, what=self.name, device=device)

    def _batch(
        self, gen: torch.Generator, text: torch.Tensor, lo: int, hi: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        starts = torch.randint(lo, hi - self.seq_len - 1, (self.batch_size,), generator=gen)
        seq = text[starts[:, None] + torch.arange(self.seq_len + 1)]
        return seq[:, :-1].to(self.device), seq[:, 1:].to(self.device)

    @staticmethod
    def _loss_acc(
        model: nn.Module, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        from torch.nn import functional as F

        from nas.search._proxies import _logits

        logits = _logits(model(x))
        target = y if logits.dim() == 3 else y[:, -1]
        flat = logits.reshape(-1, logits.shape[-1]).float()
        loss = F.cross_entropy(flat, target.reshape(-1))
        return loss, (flat.argmax(-1) == target.reshape(-1)).float().mean()

    def _train_one(self, arch: str, data: np.ndarray) -> float:
        import torch

        gen = torch.Generator().manual_seed(self.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            model = self._build(arch).to(self.device).train()
        split = int(len(data) * 0.9)
        text = torch.from_numpy(data)
        opt = torch.optim.AdamW(model.parameters(), lr=self.lr)
        for _ in range(self.steps):
            _stop_if(self.should_stop, f"{self.name} on {arch}")
            loss, _ = self._loss_acc(model, *self._batch(gen, text, 0, split))
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call,unused-ignore]
            opt.step()
        model.eval()
        with torch.no_grad():
            held_out = [self._batch(gen, text, split, len(data)) for _ in range(8)]
            accs = [self._loss_acc(model, *batch)[1] for batch in held_out]
        return float(torch.stack(accs).mean()) * 100.0

    def evaluate(self, archs: Sequence[str]) -> np.ndarray:
        """Validation next-character accuracy (%) of each architecture (NaN when it does not
        fit in memory or its training raised a ``RuntimeError``, the first one reported as a
        warning).

        Raises:
            EvaluationCancelled: When ``should_stop`` returns ``True``.
            SearchError: When training raised on every architecture of the batch and none
                has been scored so far (the first exception is named).
        """
        if self._data is None:
            self._data = np.frombuffer(stdlib_corpus(), dtype=np.uint8).astype(np.int64)
        with torch_threads(self.threads):
            return self._train_all(archs, self._data)

    def _train_all(self, archs: Sequence[str], data: np.ndarray) -> np.ndarray:
        out, raised = [], 0
        for arch in archs:
            _stop_if(self.should_stop, f"{self.name} on {arch}")
            if not self.memory.fits(arch):
                out.append(math.nan)
                continue
            start = time.perf_counter()
            try:
                score = self._train_one(arch, data)
            except RuntimeError as exc:  # e.g. a failed allocation on a GPU
                raised += 1
                if self._first_error is None:
                    self._first_error = f"training raised {_first_line(exc)} on {arch}"
                    _warn_failure(self.name, self._first_error)
                out.append(math.nan)
                continue
            out.append(score)
            self._note_cost(arch, time.perf_counter() - start)
        self._scored += sum(math.isfinite(v) for v in out)
        if archs and raised == len(archs) and self._scored == 0:
            raise _all_failed(self.name, len(archs), self._first_error or "")
        return np.array(out, dtype=float)

    def _note_cost(self, arch: str, seconds: float) -> None:
        """Warn once, after the first architecture trained for longer than
        :data:`_SLOW_TRAIN_S`, what each trial costs here (a search shows its progress per
        generation, so a slow one could otherwise look stuck for hours)."""
        if self._cost_noted or seconds < _SLOW_TRAIN_S:
            return
        self._cost_noted = True
        params = self.space.profile(self.space.from_string(arch)).params
        warnings.warn(
            f"{self.name}: {_duration(seconds)} to train one architecture here "
            f"({params / 1e6:.3g}M parameters on {self.device}); every trial of the search "
            "costs about as much: fewer --trials, a narrower --choices hidden=..., a GPU, or "
            "--accuracy proxy are faster",
            RuntimeWarning,
            stacklevel=4,
        )


#: Seconds of one architecture's short training from which its cost is worth a warning.
_SLOW_TRAIN_S = 30.0


def _duration(seconds: float) -> str:
    """``seconds`` as ``42 s`` or ``25 min``."""
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _import_user_module(name: str) -> Any:
    """Import ``name``, also from the current directory (as ``uvicorn main:app`` does): a
    console script's ``sys.path`` does not hold it, so ``nas search --accuracy myacc:score``
    next to ``myacc.py`` would otherwise not find it."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        cwd = os.getcwd()
        if exc.name != name.partition(".")[0] or cwd in sys.path:
            raise
        sys.path.insert(0, cwd)
        return importlib.import_module(name)


class _AccuracySpecError(SearchError, ValueError):
    """A ``MODULE:FUNC`` naming a module or function that does not exist, or something not
    callable (bad input: also a ``ValueError``)."""


class UserFunctionAccuracy:
    """A user function ``f(model, arch) -> float`` named as ``"module:function"``.

    ``model`` is ``space.build(arch)`` (fresh, train mode); ``arch`` is the canonical string.
    ``should_stop`` (optional) is polled before each architecture; when it returns ``True``,
    ``evaluate`` raises :class:`EvaluationCancelled`.

    Raises:
        ValueError: If the spec is not ``MODULE:FUNC``.
        SearchError: If the module or function cannot be loaded; when the module or
            function does not exist or is not callable, the error is also a ``ValueError``.
    """

    def __init__(
        self, space: SearchSpace[Any], spec: str, *, should_stop: StopFn | None = None
    ) -> None:
        module_name, sep, func_name = spec.partition(":")
        if not sep or not module_name or not func_name.isidentifier():
            raise ValueError(
                f"`accuracy` must be table, proxy, short-train or MODULE:FUNC, got {spec!r}."
            )
        try:
            module = _import_user_module(module_name)
        except ModuleNotFoundError as exc:
            named = exc.name is not None and f"{module_name}.".startswith(f"{exc.name}.")
            if not named:  # an import inside the user's module failed: its own failure
                raise SearchError(f"cannot load accuracy function {spec!r}: {exc}") from exc
            raise _AccuracySpecError(f"cannot load accuracy function {spec!r}: {exc}") from exc
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - the module failed importing
            reason = f"{type(exc).__name__}: {exc}"
            raise SearchError(f"cannot load accuracy function {spec!r}: {reason}") from exc
        try:
            func = getattr(module, func_name)
        except AttributeError as exc:  # no such function: bad input
            raise _AccuracySpecError(f"cannot load accuracy function {spec!r}: {exc}") from exc
        if not callable(func):
            raise _AccuracySpecError(f"accuracy function {spec!r} is not callable")
        self.space, self.name, self._func = space, spec, func
        self.should_stop = should_stop
        self._scored = 0  # finite values returned so far
        self._first_error: str | None = None
        self._warned: set[str] = set()  # kinds of failure reported so far
        # the built fp32 model and a copy; what the function itself allocates is unknown
        self.memory = MemoryGuard(space, bytes_per_param=8.0, what=self.name)

    def evaluate(self, archs: Sequence[str]) -> np.ndarray:
        """``f(space.build(arch), arch)`` for each architecture.

        A value that is not a number (a bool or a string is not one either) or not finite,
        an exception raised by the function (``SystemExit`` included), or an architecture
        too large for the free memory gives NaN (a failed trial); the first failure of each
        kind (raised, not a number, not finite) is reported once as a warning.

        Raises:
            EvaluationCancelled: When ``should_stop`` returns ``True``.
            SearchError: If the function has not returned a finite number for any
                architecture so far (a whole first batch): the function is broken, and a
                search of failed trials would end with an empty front.
        """
        out = [self._value(arch) for arch in archs]
        self._scored += sum(math.isfinite(v) for v in out)
        if archs and self._scored == 0:
            why = self._first_error or "returned no finite number"
            raise SearchError(
                f"accuracy function {self.name!r} failed on all {len(archs)} architectures of "
                f"the first batch ({why})"
            )
        return np.array(out, dtype=float)

    def _value(self, arch: str) -> float:
        _stop_if(self.should_stop, f"{self.name} on {arch}")
        if not self.memory.fits(arch):
            return math.nan
        try:
            raw = self._func(self.space.build(self.space.from_string(arch)), arch)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - user code may raise anything
            return self._failed(arch, "raised", f"raised {type(exc).__name__}: {exc}")
        not_number = f"returned {type(raw).__name__} {raw!r:.60}, not a number"
        if isinstance(raw, bool | np.bool_ | str | bytes):  # True is not 1.0, "42" not 42
            return self._failed(arch, "type", not_number)
        try:
            value = float(raw)
        except (TypeError, ValueError):
            return self._failed(arch, "type", not_number)
        if not math.isfinite(value):
            return self._failed(arch, "finite", f"returned {value}, not a finite number")
        return value

    def _failed(self, arch: str, kind: str, reason: str) -> float:
        """NaN for a failed architecture; the first failure of each ``kind`` is reported."""
        text = f"{reason.splitlines()[0] if reason else reason} on {arch}"
        if self._first_error is None:
            self._first_error = text
        if kind not in self._warned:
            self._warned.add(kind)
            warnings.warn(
                f"accuracy function {self.name!r} {text}; architectures it fails on become "
                "failed trials",
                RuntimeWarning,
                stacklevel=3,
            )
        return math.nan


#: ``(trials, population)`` of a search when none are given: a table lookup is instant, so
#: a table search affords many trials; a proxy or short training scores each architecture on
#: a built model (a proxy: about a second per trial on a CPU core; short training: minutes
#: per architecture at the language-model space's widths, which it warns about).
TABLE_BUDGET = (1000, 50)
PROXY_BUDGET = (200, 20)


def default_budget(objective: AccuracyObjective | str) -> tuple[int, int]:
    """``(trials, population)`` of a search scored by ``objective`` (an objective, or its
    spec such as ``"table"``) when none are given: :data:`TABLE_BUDGET` for a table, else
    :data:`PROXY_BUDGET` (what ``nas search`` and ``POST /v1/searches`` use)."""
    table = objective == "table" or isinstance(objective, TableAccuracy)
    return TABLE_BUDGET if table else PROXY_BUDGET


#: Proxy used by ``auto`` when the DB has no accuracy table: synflow is data-free (one forward
#: and backward pass on an all-ones input) and the cheapest informative proxy (Tanaka et al.,
#: NeurIPS 2020; Abdelfattah et al., ICLR 2021).
AUTO_PROXY = "synflow"
#: Image side and batch of ``auto`` proxies: synflow at 64 px / batch 8 costs ~0.15 s per
#: MnasNet architecture on one CPU core instead of ~2.5 s at 224 px / batch 32.
AUTO_PROXY_RESOLUTION = 64
AUTO_PROXY_BATCH = 8


def is_language_model_space(space: SearchSpace[Any]) -> bool:
    """Whether ``space`` builds language models (its workload has a ``prompt_len``): the
    spaces ``short-train`` can train."""
    return "prompt_len" in getattr(space, "workload_fields", ())


def language_model_spaces() -> list[str]:
    """Names of the registered language-model spaces (those ``short-train`` takes)."""
    from search_spaces import get_space, list_spaces

    return [n for n in list_spaces() if is_language_model_space(get_space(n))]


def has_accuracy_table(
    db: HardwareDB, *, space: str, dataset: str, metric: str = "test_accuracy"
) -> bool:
    """Whether ``db`` holds ``metric`` accuracies of ``space`` on ``dataset``."""
    from hwdb import NotFoundError

    try:
        return len(db.accuracy_table(space, dataset=dataset, metric=metric)) > 0
    except NotFoundError:  # the space is not registered in this database yet
        return False


def make_accuracy_objective(
    spec: str,
    *,
    space: SearchSpace[Any],
    db: HardwareDB | None = None,
    dataset: str = "cifar10",
    proxy: str = "vote",
    seed: int = 0,
    device: str = "cpu",
    resolution: int | None = None,
    threads: int | None = 1,
    should_stop: StopFn | None = None,
) -> TableAccuracy | ProxyAccuracy | ShortTrainAccuracy | UserFunctionAccuracy:
    """Build the objective named by ``spec``: auto, table, proxy, short-train or ``MODULE:FUNC``.

    ``auto`` is ``table`` when ``db`` holds accuracies of the space on ``dataset``, else the
    :data:`AUTO_PROXY` proxy at a reduced resolution and batch (:data:`AUTO_PROXY_RESOLUTION`,
    :data:`AUTO_PROXY_BATCH`), so the default search runs on a fresh install without accuracy
    tables. ``short-train`` trains a character-level language model, so it takes only a
    language-model space (:func:`is_language_model_space`).

    Args:
        spec: Objective kind (``proxy:NAME`` selects one proxy, e.g. ``proxy:synflow``).
        space: The search space.
        db: Database with the accuracy table (``table`` only; ``auto`` checks it).
        dataset: Accuracy dataset of the table.
        proxy: Default proxy for ``proxy``.
        seed: Seed of proxies / short training.
        device: Torch device for proxies / short training.
        resolution: Image side of proxies for vision spaces (default: the space's default,
            or at most :data:`AUTO_PROXY_RESOLUTION` for ``auto``).
        threads: Torch intra-op threads of proxies and short training (``None``: torch's
            setting); a user's ``MODULE:FUNC`` runs under the caller's setting.
        should_stop: Polled by the objective while it works (before each model it builds or
            trains, and each training step); ``True`` makes ``evaluate`` raise
            :class:`EvaluationCancelled`. A table lookup is instant and does not poll it.

    Raises:
        ValueError: If ``spec`` is unknown, ``table`` is asked without ``db``,
            ``short-train`` for a space that is not a language model, or ``resolution`` or
            ``threads`` is not positive.
    """
    if resolution is not None and resolution < 1:
        raise ValueError("`resolution` must be greater than or equal to 1.")
    _check_threads(threads)
    kind = spec.strip() if isinstance(spec, str) else ""
    if kind == "auto":
        if db is not None and has_accuracy_table(db, space=space.name, dataset=dataset):
            return TableAccuracy.from_db(db, space=space.name, dataset=dataset)
        side = space.default_workload().resolution
        return ProxyAccuracy(
            space,
            AUTO_PROXY,
            batch_size=AUTO_PROXY_BATCH,
            seed=seed,
            device=device,
            resolution=resolution or min(side, AUTO_PROXY_RESOLUTION),
            threads=threads,
            should_stop=should_stop,
        )
    if kind == "table":
        if db is None:
            raise ValueError("`db` is required for the table accuracy objective.")
        return TableAccuracy.from_db(db, space=space.name, dataset=dataset)
    if kind.startswith("proxy:") and not kind.partition(":")[2].strip():
        raise ValueError(
            f"`accuracy` proxy:NAME needs a proxy name after 'proxy:', got {spec!r} (plain "
            "'proxy' is the vote)."
        )
    if kind == "proxy" or kind.startswith("proxy:"):
        return ProxyAccuracy(
            space,
            kind.partition(":")[2] or proxy,
            seed=seed,
            device=device,
            resolution=resolution,
            threads=threads,
            should_stop=should_stop,
        )
    if kind == "short-train":
        if not is_language_model_space(space):
            lms = ", ".join(language_model_spaces())
            raise ValueError(
                "`accuracy` short-train trains a character-level language model: it needs a "
                f"language-model space ({lms}), not {space.name!r}; use auto, table, proxy or "
                "MODULE:FUNC for it."
            )
        return ShortTrainAccuracy(
            space, seed=seed, device=device, threads=threads, should_stop=should_stop
        )
    return UserFunctionAccuracy(space, kind, should_stop=should_stop)
