"""Search spaces: MnasNet, MobileViG, Nemotron-Flash, NAS-Bench-201 and FBNet builders.

Importing the package registers every space (timm-style registry).
"""

from __future__ import annotations

from search_spaces._base import SearchSpace
from search_spaces._errors import InvalidArchError, SearchSpaceError, UnknownSpaceError
from search_spaces._registry import get_space, list_spaces, register_space
from search_spaces._restrict import restrict_space
from search_spaces._workload import WORKLOAD_LIMITS, Profile, Workload

# Family modules register themselves at import.
from search_spaces import nasbench201 as _nasbench201  # noqa: E402,F401  isort: skip
from search_spaces import fbnet as _fbnet  # noqa: E402,F401  isort: skip
from search_spaces import mnasnet as _mnasnet  # noqa: E402,F401  isort: skip
from search_spaces import mobilevig as _mobilevig  # noqa: E402,F401  isort: skip
from search_spaces import nemotron_flash as _nemotron_flash  # noqa: E402,F401  isort: skip

__all__ = [
    "WORKLOAD_LIMITS",
    "InvalidArchError",
    "Profile",
    "SearchSpace",
    "SearchSpaceError",
    "UnknownSpaceError",
    "Workload",
    "get_space",
    "list_spaces",
    "register_space",
    "restrict_space",
]
