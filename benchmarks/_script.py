"""Entry point shared by the benchmark scripts: library errors end as one line, not a traceback.

A benchmark given a missing database, a database without the data it needs or another bad
input raises one of the packages' root exceptions; the script then prints
``SCRIPT: error: MESSAGE`` on stderr and exits 2, like an argparse usage error. So does a
missing input file (a wrong ``--shared-data`` or ``NAS_SHARED_DATA``). Anything else
is a bug and keeps its traceback. Ctrl-C exits 130 with one line.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn


def _library_errors() -> tuple[type[BaseException], ...]:
    """The root exceptions of the packages that import here.

    A package that cannot be imported (the GPU machine of ``gpu_dataset.py measure`` has torch
    but not SQLAlchemy) cannot have raised its error, so it is skipped rather than turning the
    report of the real error into an ImportError.
    """
    roots = (
        ("hwdb", "HwdbError"),
        ("nas", "NasError"),
        ("predictors", "PredictorError"),
        ("search_spaces", "SearchSpaceError"),
    )
    found: list[type[BaseException]] = []
    for module, name in roots:
        try:
            found.append(getattr(importlib.import_module(module), name))
        except ImportError:
            continue
    return tuple(found)


def run(main: Callable[[], int | None]) -> NoReturn:
    """Run ``main()`` and exit with its status (0 for None)."""
    name = Path(sys.argv[0]).name
    try:
        code = main()
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except FileNotFoundError as exc:  # a missing input file (--shared-data, NAS_SHARED_DATA)
        print(f"{name}: error: no such file: {exc.filename}", file=sys.stderr)
        raise SystemExit(2) from None
    except Exception as exc:
        if not isinstance(exc, _library_errors()):
            raise
        print(f"{name}: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    raise SystemExit(code or 0)
