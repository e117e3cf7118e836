"""Start-up pays only for what a command uses: ``import lstm_plugin`` and the parser load no pandas,
pydantic, onnxruntime or torch; ``predict`` loads neither torch, onnx nor Backtrader; and importing the
Backtrader layer prints none of Backtrader's invalid-escape warnings."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile

HEAVY = ("pandas", "pydantic", "numpy", "onnx", "onnxruntime", "torch", "backtrader")


def loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys, json; print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_importing_the_package_and_asking_for_help_load_nothing_heavy():
    assert loaded_after("import lstm_plugin") == set()
    help_code = (
        "from lstm_plugin.cli.main import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    )
    assert loaded_after(help_code) == set()
    assert "pandas" in loaded_after("import lstm_plugin; lstm_plugin.load_config; lstm_plugin.FrameSource")


def test_predict_loads_no_torch_onnx_or_backtrader(trained):
    code = (
        "from lstm_plugin.cli.main import main\n"
        f"main(['predict', 'AAPL', '--as-of', '2016-03-31', '--json', '--models', {str(trained['root'])!r}])"
    )
    loaded = loaded_after(code)
    assert {"pandas", "onnxruntime"} <= loaded
    assert not loaded & {"torch", "onnx", "backtrader"}


def test_backtraders_escape_warnings_are_silenced_at_our_import():
    strict = ["-W", "error::SyntaxWarning", "-W", "error::DeprecationWarning"]
    with tempfile.TemporaryDirectory() as cache:  # compile Backtrader afresh, as a first import does
        ours = subprocess.run(
            [sys.executable, *strict, "-X", f"pycache_prefix={cache}", "-c", "import lstm_plugin.backtrader"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert ours.returncode == 0 and ours.stderr == "", ours.stderr
    with tempfile.TemporaryDirectory() as cache:
        bare = subprocess.run(
            [sys.executable, *strict, "-X", f"pycache_prefix={cache}", "-c", "import backtrader"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert bare.returncode != 0 and "invalid escape sequence" in bare.stderr  # the control: they exist
