"""numba compilation with the on-disk cache where one can be written (the project's CPU kernels:
:mod:`auglift.depth.kernels`, :mod:`auglift.datasets.synthetic.kernels`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba

__all__ = ["njit_cached"]


def njit_cached(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``numba.njit(nogil=True, cache=True, **options)``, without the on-disk cache where numba finds no
    writable place for it (a read-only install and home: numba refuses ``cache=True`` at decoration);
    the kernels then compile once per process (about 2 s)."""

    def wrap(fn: Callable[..., Any]) -> Any:
        try:
            return numba.njit(nogil=True, cache=True, **options)(fn)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            return numba.njit(nogil=True, cache=False, **options)(fn)

    return wrap
