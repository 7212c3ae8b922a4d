"""Run every benchmark script in this folder in turn (``make bench``); a script that needs arguments (an
experiment on a finished run, e.g. ``bench_tcn_confidence.py --demo DIR``) is listed, not run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

here = Path(__file__).parent
for script in sorted(here.glob("bench_*.py")):
    if "required=True" in script.read_text():
        print(f"\n=== {script.name}: needs arguments (see its --help), not run", flush=True)
        continue
    print(f"\n=== {script.name}", flush=True)
    subprocess.run([sys.executable, str(script)], check=True)
