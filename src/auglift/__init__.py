"""auglift: depth-augmented 2D-to-3D human pose lifting.

The data path is visible in the package layout::

    raw dataset -> PoseSet (canonical arrays) -> depth descriptors (UADD)
      -> input encoding -> lifter -> metrics / report

Every command-line subcommand is a thin wrapper over a library function. A trained lifter in
Python: ``from auglift import Lifter`` (:mod:`auglift.lifter`).
"""

import os
from typing import Any

__version__ = "0.1.0"

# OpenMP threads that spin while waiting collapse training when another process competes for the cores
# (issue 15: 268 against 22,000 samples/s); sleeping waiters cost little on a quiet machine. The runtime
# reads the variable once, when torch loads it, so this holds when auglift is imported before torch
# (the `auglift` command) and the user has not set it (benchmarks/bench_contention.py, README).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from auglift.errors import AugliftError, ConfigError, DataError

__all__ = ["AugliftError", "ConfigError", "DataError", "Lifter", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Lifter":  # imported on first use: `import auglift` (and `auglift --help`) stays free of torch
        from auglift.lifter import Lifter

        return Lifter
    raise AttributeError(f"module 'auglift' has no attribute {name!r}")
