"""auglift: depth-augmented 2D-to-3D human pose lifting.

The data path is visible in the package layout::

    raw dataset -> PoseSet (canonical arrays) -> depth descriptors (UADD)
      -> input encoding -> lifter -> metrics / report

Every command-line subcommand is a thin wrapper over a library function.
"""

__version__ = "0.1.0"

from auglift.errors import AugliftError, ConfigError, DataError

__all__ = ["AugliftError", "ConfigError", "DataError", "__version__"]
