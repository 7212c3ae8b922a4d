import json
import subprocess
import sys

import numpy as np

from auglift import __version__
from auglift.cli import COMMANDS, build_parser, main
from auglift.io import save_npy


def test_version_and_help(capsys):
    out = subprocess.run([sys.executable, "-m", "auglift", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"auglift {__version__}"
    out = subprocess.run([sys.executable, "-m", "auglift", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "info" in out.stdout


def test_help_lists_every_command_without_importing_torch():
    """cli imports only the module of the command being run; --help shows COMMANDS' lines, which are the
    command modules' own help."""
    code = ("import contextlib, sys; from auglift.cli import main\n"
            "with contextlib.suppress(SystemExit): main(['--help'])\n"
            "print('torch' in sys.modules, 'auglift.poseset' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip().endswith("False False"), out.stdout
    assert all(name in out.stdout for name in COMMANDS)
    full = next(a for a in build_parser()._actions if a.dest == "command")
    assert {c.dest: c.help for c in full._choices_actions} == COMMANDS


def test_info_text_and_json(saved_poseset, capsys):
    assert main(["info", str(saved_poseset)]) == 0
    text = capsys.readouterr().out
    assert "60 in 3 clips" in text and "root depth" in text
    assert main(["info", "--json", str(saved_poseset)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["frames"] == 60 and data["subjects"] == {"S1": 40, "S2": 20}


def test_bad_input_is_one_line_exit_2(saved_poseset):
    save_npy(saved_poseset / "kp3d.npy", np.zeros((60, 16, 3), np.float32))
    out = subprocess.run([sys.executable, "-m", "auglift", "info", str(saved_poseset)],
                         capture_output=True, text=True)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("auglift: error: ") and "kp3d.npy: kp3d: expected 17 joints" in lines[0]


def test_missing_directory(tmp_path, capsys):
    assert main(["info", str(tmp_path / "nope")]) == 2
    assert "PoseSet directory not found" in capsys.readouterr().err
