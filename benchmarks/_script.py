"""Entry point shared by the benchmark scripts: library errors end as one line, not a traceback.

A benchmark given a missing database, a database without the data it needs or another bad
input raises one of the packages' root exceptions; the script then prints
``SCRIPT: error: MESSAGE`` on stderr and exits 2, like an argparse usage error. Anything else
is a bug and keeps its traceback. Ctrl-C exits 130 with one line.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn


def _library_errors() -> tuple[type[BaseException], ...]:
    from hwdb import HwdbError
    from nas import NasError
    from predictors import PredictorError
    from search_spaces import SearchSpaceError

    return (HwdbError, NasError, PredictorError, SearchSpaceError)


def run(main: Callable[[], int | None]) -> NoReturn:
    """Run ``main()`` and exit with its status (0 for None)."""
    name = Path(sys.argv[0]).name
    try:
        code = main()
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as exc:
        if not isinstance(exc, _library_errors()):
            raise
        print(f"{name}: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    raise SystemExit(code or 0)
