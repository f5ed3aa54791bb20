"""The search-space protocol every registered space implements.

A space is a grid of Optuna parameters (:meth:`SearchSpace.search_parameters`) plus a
deterministic mapping from a full parameter assignment to a concrete architecture
(:meth:`SearchSpace.from_params`, which includes the space's repair rules). Because
:meth:`SearchSpace.sample` always suggests *every* parameter under a fixed name with a fixed
distribution, Optuna's NSGA-II crossover sees all of them in its intersection search space
(spec section 0.2).
"""

from __future__ import annotations

import difflib
import functools
import numbers
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, get_args, get_origin

import numpy as np

from search_spaces._errors import InvalidArchError
from search_spaces._workload import Profile, Workload

if TYPE_CHECKING:
    import optuna
    import torch
    from torch import nn

__all__ = ["ArchT", "ParamValue", "SearchSpace"]

ArchT = TypeVar("ArchT")
ParamValue = int | float | str | bool | None


_ARCH_METHODS = ("to_string", "build", "encode", "profile")


def _checking_arch(method: Callable[..., Any], name: str) -> Callable[..., Any]:
    """``method(self, arch, workload=None)`` that first checks ``arch`` against the space's
    :attr:`SearchSpace.arch_type` and ``workload`` against :class:`Workload`."""

    @functools.wraps(method)
    def checked(self: SearchSpace[Any], arch: Any, *args: Any, **kwargs: Any) -> Any:
        kind = type(self).arch_type
        if kind is not None and not isinstance(arch, kind):
            hint = (
                " (parse a string with from_string or resolve first)"
                if isinstance(arch, str)
                else ""
            )
            raise InvalidArchError(
                f"{self.name}.{name}: expected a {kind.__name__}, got {type(arch).__name__}{hint}"
            )
        workload = kwargs.get("workload", args[0] if args else None)
        if workload is not None and not isinstance(workload, Workload):
            raise ValueError(
                f"`workload` must be a search_spaces.Workload or None, got "
                f"{type(workload).__name__}."
            )
        return method(self, arch, *args, **kwargs)

    checked._checks_arch = True  # type: ignore[attr-defined]
    return checked


def _checking_text(method: Callable[..., Any]) -> Callable[..., Any]:
    """``from_string(self, text)`` that refuses a non-string ``text`` by its type."""

    @functools.wraps(method)
    def checked(self: SearchSpace[Any], text: Any) -> Any:
        if not isinstance(text, str):
            raise InvalidArchError(
                f"{self.name}.from_string: expected an architecture string, got "
                f"{type(text).__name__}"
            )
        return method(self, text)

    checked._checks_arch = True  # type: ignore[attr-defined]
    return checked


class SearchSpace(ABC, Generic[ArchT]):
    """Base class of all search spaces.

    Subclasses set :attr:`name`, implement the abstract methods, and register themselves with
    :func:`search_spaces.register_space`.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    #: The hwdb metric that is this space's latency: what predictors learn and a search
    #: minimises (``"latency_ms"``: one forward pass).
    latency_metric: ClassVar[str] = "latency_ms"
    #: The :class:`Workload` fields this space's models read (vision: batch and resolution);
    #: the others keep their defaults and are left out of what users are shown.
    workload_fields: ClassVar[tuple[str, ...]] = ("batch_size", "resolution")
    #: The class of this space's architectures (from ``SearchSpace[ArchClass]``; None: not
    #: checked). :meth:`to_string`, :meth:`build`, :meth:`encode` and :meth:`profile` refuse
    #: anything else, e.g. an architecture *string*, with one :class:`InvalidArchError`.
    arch_type: ClassVar[type | None] = None

    def __getstate__(self) -> dict[str, Any]:
        """The attributes, with per-instance ``lru_cache`` wrappers of methods (a profile
        cache) replaced by what rebuilds them: such a wrapper does not pickle."""
        state = dict(self.__dict__)
        caches = {}
        for key, value in self.__dict__.items():
            method = getattr(value, "__wrapped__", None)
            if (
                method is not None
                and hasattr(value, "cache_info")
                and isinstance(getattr(method, "__self__", None), SearchSpace)
            ):  # a restricted copy shares its original's cache
                caches[key] = (method.__name__, value.cache_parameters()["maxsize"])
                del state[key]
        state["_method_caches"] = caches
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore the attributes and give every method cache a fresh, empty one."""
        state = dict(state)
        caches = state.pop("_method_caches", {})
        self.__dict__.update(state)
        for key, (method, maxsize) in caches.items():
            self.__dict__[key] = functools.lru_cache(maxsize=maxsize)(getattr(self, method))

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for base in getattr(cls, "__orig_bases__", ()):
            args = get_args(base)
            if get_origin(base) is SearchSpace and args and isinstance(args[0], type):
                cls.arch_type = args[0]
        for name in _ARCH_METHODS:
            method = cls.__dict__.get(name)
            if callable(method) and not getattr(method, "_checks_arch", False):
                setattr(cls, name, _checking_arch(method, name))
        parse = cls.__dict__.get("from_string")
        if callable(parse) and not getattr(parse, "_checks_arch", False):
            cls.from_string = _checking_text(parse)  # type: ignore[method-assign]

    # ----------------------------------------------------------------- sampling grid
    @abstractmethod
    def search_parameters(self) -> dict[str, Sequence[ParamValue]]:
        """Every Optuna parameter name with its ordered, fixed list of choices."""

    @abstractmethod
    def from_params(self, params: Mapping[str, Any]) -> ArchT:
        """Map one full parameter assignment to an architecture (deterministic repair)."""

    def prune_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters of the same network with every operation that cannot reach the model
        output set to its no-op choice (default: unchanged).

        Both compute the same function, so they have the same expected accuracy, and the pruned
        one runs no more operators (eager runtimes execute dead operations; graph runtimes drop
        them). Search evaluates the pruned one instead of each such variant.
        """
        return dict(params)

    def sample(self, trial: optuna.Trial) -> ArchT:
        """Suggest every parameter on ``trial`` and return the repaired architecture."""
        params = {
            name: trial.suggest_categorical(name, list(choices))  # type: ignore[arg-type]
            for name, choices in self.search_parameters().items()
        }
        return self.from_params(params)

    def random(self, rng: np.random.Generator | int | None = None) -> ArchT:
        """Draw one architecture uniformly over the parameter grid.

        Args:
            rng: A numpy ``Generator`` or a seed (an integer >= 0; None: fresh entropy).

        Raises:
            ValueError: naming ``rng`` when it is neither.
        """
        if isinstance(rng, np.random.Generator):
            gen = rng
        elif (
            rng is None
            or isinstance(rng, np.random.SeedSequence | np.random.BitGenerator)
            or (isinstance(rng, numbers.Integral) and not isinstance(rng, bool) and rng >= 0)
        ):
            gen = np.random.default_rng(rng)
        else:
            raise ValueError(
                "`rng` must be a numpy Generator, a seed (an integer greater than or equal to "
                f"0) or None, got {rng!r}."
            )
        params = {
            name: choices[int(gen.integers(len(choices)))]
            for name, choices in self.search_parameters().items()
        }
        return self.from_params(params)

    # ----------------------------------------------------------------- identity
    @abstractmethod
    def to_string(self, arch: ArchT) -> str:
        """Canonical, human-readable architecture string (the hwdb key)."""

    @abstractmethod
    def from_string(self, text: str) -> ArchT:
        """Parse a canonical string.

        Raises:
            InvalidArchError: naming the bad token.
        """

    def canonicalize(self, text: str) -> str:
        """Return the canonical form of an architecture string (parse, then print)."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidArchError(f"architecture string for space {self.name!r} is empty")
        return self.to_string(self.from_string(text.strip()))

    # ----------------------------------------------------------------- models
    @abstractmethod
    def default_workload(self) -> Workload:
        """The standard latency workload of the space (spec section 0.4)."""

    def smoke_workload(self) -> Workload:
        """A small workload for quick CPU forward passes in tests (override per space)."""
        return self.default_workload()

    def workload_with(self, fields: Mapping[str, Any]) -> Workload:
        """:meth:`default_workload` with ``fields`` over it (how a stored workload, which may
        state only what differs from the default, is read back).

        Raises:
            ValueError: naming an unknown field, or a value :class:`Workload` refuses.
            TypeError: for a value of the wrong type that :class:`Workload` cannot check.
        """
        default = self.default_workload()
        return type(default).from_dict({**default.to_dict(), **fields})

    def workload_dict(self, workload: Workload | None = None) -> dict[str, int]:
        """The :attr:`workload_fields` of ``workload`` (default: :meth:`default_workload`)."""
        full = (workload or self.default_workload()).to_dict()
        return {k: full[k] for k in self.workload_fields}

    @abstractmethod
    def build(self, arch: ArchT) -> nn.Module:
        """Build the PyTorch module of ``arch`` (freshly initialised, train mode)."""

    @abstractmethod
    def example_inputs(self, workload: Workload | None = None) -> tuple[torch.Tensor, ...]:
        """Inputs for one forward pass of a built model under ``workload``."""

    @abstractmethod
    def encode(self, arch: ArchT, workload: Workload | None = None) -> np.ndarray:
        """Fixed-length, finite float vector for latency predictors (spec section 0.3)."""

    @abstractmethod
    def profile(self, arch: ArchT, workload: Workload | None = None) -> Profile:
        """Params, MACs/FLOPs and memory bytes of ``arch`` under ``workload``."""

    # ----------------------------------------------------------------- reference sets
    @abstractmethod
    def reference_archs(self) -> dict[str, ArchT]:
        """Published models by name (e.g. ``"mnasnet-a1"``)."""

    @abstractmethod
    def hardware_embedding_archs(self) -> list[ArchT]:
        """The 10 fixed architectures whose latencies form a device's HELP embedding."""

    # ----------------------------------------------------------------- helpers
    def resolve(self, name_or_string: str) -> ArchT:
        """Accept a reference-model name or an architecture string.

        Raises:
            InvalidArchError: If it is neither; when it is close to a reference name (a typo
                such as ``mnasnet-a2``), the message suggests that name.
        """
        if not isinstance(name_or_string, str):  # as from_string refuses it
            return self.from_string(name_or_string)
        refs = self.reference_archs()
        key = name_or_string.strip()
        if key.lower() in refs:
            return refs[key.lower()]
        try:
            return self.from_string(key)
        except InvalidArchError as exc:
            close = difflib.get_close_matches(key.lower(), list(refs), n=1, cutoff=0.8)
            if not close:
                raise
            raise InvalidArchError(
                f"{key!r} is neither an architecture of {self.name} nor a reference model "
                f"(did you mean {close[0]!r}? `nas spaces show {self.name}` lists them)"
            ) from exc

    @property
    def encoding_length(self) -> int:
        """Length of :meth:`encode`'s output (fixed per space)."""
        return int(self.encode(self.random(0)).shape[0])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
