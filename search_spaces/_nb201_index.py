"""The official NAS-Bench-201 architecture index, read from public data at run time.

The official index order (NAS-Bench-201 / NATS-Bench topology search space, also used by
HW-NAS-Bench and HELP) is *not* a product order over the 6 edges: index 0 is
``|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|``.
It cannot be derived, so it is loaded from a file the user has (HELP's ``str_arch2idx.pt`` or
the NATS-Bench accuracy CSV) or from any ``arch string -> index`` mapping, e.g. the one the
hardware database stores. Nothing of it ships with this package.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from search_spaces._errors import InvalidArchError, SearchSpaceError

__all__ = ["NB201IndexTable"]

NUM_ARCHS = 15625
_HELP_FILE = Path("help/data/nasbench201/str_arch2idx.pt")
_NATS_FILE = Path("nb201-accuracy/nats_bench.csv")


class NB201IndexTable:
    """Bijection between canonical NB201 arch strings and official indices ``0..15624``.

    Args:
        mapping: Arch string -> index; every string is canonicalised with ``canonicalize``.
        canonicalize: Parser/printer of the space (raises ``InvalidArchError`` on bad strings).

    Raises:
        SearchSpaceError: when the mapping is not a bijection onto ``range(15625)``.
    """

    def __init__(self, mapping: Mapping[str, int], canonicalize: Callable[[str], str]) -> None:
        by_arch: dict[str, int] = {}
        for text, index in mapping.items():
            by_arch[canonicalize(text)] = int(index)
        if len(by_arch) != NUM_ARCHS or set(by_arch.values()) != set(range(NUM_ARCHS)):
            raise SearchSpaceError(
                f"NAS-Bench-201 index mapping must map {NUM_ARCHS} distinct architectures "
                f"onto 0..{NUM_ARCHS - 1}; got {len(by_arch)} architectures"
            )
        self._by_arch = by_arch
        self._by_index = [""] * NUM_ARCHS
        for text, index in by_arch.items():
            self._by_index[index] = text

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], canonicalize: Callable[[str], str]
    ) -> NB201IndexTable:
        """Load HELP's ``str_arch2idx.pt`` or a CSV whose row ``i`` has index ``i``.

        The CSV needs an ``ArchitectureString`` or ``arch_str`` column (the NATS-Bench
        accuracy export and the LatBench table both qualify; a ``nb201_index`` column is used
        when present).

        Raises:
            SearchSpaceError: naming the file when it is missing or malformed.
        """
        file = Path(path)
        if not file.is_file():
            raise SearchSpaceError(f"NAS-Bench-201 index file not found: {file}")
        if file.suffix == ".pt":
            import torch

            try:
                data = torch.load(file, map_location="cpu", weights_only=True)
            except Exception as exc:  # torch raises many types on corrupt pickles
                raise SearchSpaceError(f"cannot read {file}: {exc}") from exc
            if not isinstance(data, dict):
                raise SearchSpaceError(f"{file} does not hold an arch -> index dict")
            return cls(data, canonicalize)
        return cls(_read_csv(file), canonicalize)

    @classmethod
    def from_shared_data(
        cls, canonicalize: Callable[[str], str], root: str | os.PathLike[str] | None = None
    ) -> NB201IndexTable:
        """Load from the shared public data folder (``NAS_SHARED_DATA``, else ``../shared/data``).

        Raises:
            SearchSpaceError: when neither HELP's nor the NATS-Bench file is there.
        """
        base = Path(root) if root is not None else _default_root()
        for rel in (_HELP_FILE, _NATS_FILE):
            if (base / rel).is_file():
                return cls.from_file(base / rel, canonicalize)
        raise SearchSpaceError(
            f"no NAS-Bench-201 index file under {base} (looked for {_HELP_FILE}, {_NATS_FILE})"
        )

    def index(self, arch_string: str) -> int:
        """Official index of a canonical arch string."""
        try:
            return self._by_arch[arch_string]
        except KeyError:
            raise InvalidArchError(f"not a NAS-Bench-201 architecture: {arch_string!r}") from None

    def arch(self, index: int) -> str:
        """Canonical arch string of an official index.

        Raises:
            ValueError: when ``index`` is outside ``0..15624``.
        """
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < NUM_ARCHS:
            raise ValueError(f"`index` must be an integer in [0, {NUM_ARCHS - 1}], got {index!r}.")
        return self._by_index[index]

    def __len__(self) -> int:
        return NUM_ARCHS


def _default_root() -> Path:
    env = os.environ.get("NAS_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data"


def _read_csv(file: Path) -> dict[str, int]:
    with file.open(newline="") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames or []
        column = next((c for c in ("ArchitectureString", "arch_str") if c in fields), None)
        if column is None:
            raise SearchSpaceError(f"{file}: no ArchitectureString/arch_str column")
        mapping: dict[str, int] = {}
        for row_no, row in enumerate(reader):
            raw = row.get("nb201_index")
            try:
                index = int(raw) if raw not in (None, "") else row_no
            except ValueError:
                raise SearchSpaceError(f"{file}: row {row_no}: bad nb201_index {raw!r}") from None
            mapping[row[column]] = index
    return mapping
