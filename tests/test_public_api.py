"""The public API: one list in ``lstm_plugin/__init__.py`` drives the lazy exports, ``__all__`` and
``dir()``; importing the package loads neither Backtrader nor torch; the package docstring's tutorial runs."""

from __future__ import annotations

import ast
import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import lstm_plugin

INIT = Path(lstm_plugin.__file__)


def test_one_list_drives_the_exports_all_and_dir() -> None:
    assert lstm_plugin.__all__ == sorted([*lstm_plugin.PUBLIC, "__version__"])
    assert dir(lstm_plugin) == lstm_plugin.__all__
    for name, module in lstm_plugin.PUBLIC.items():
        assert getattr(lstm_plugin, name) is getattr(importlib.import_module(module), name), name
    with pytest.raises(AttributeError, match="no attribute 'hookspec'"):
        lstm_plugin.hookspec  # noqa: B018 - plugins cannot add hooks: not exported


def test_what_type_checkers_see_is_the_same_list() -> None:
    """The ``if TYPE_CHECKING:`` imports name exactly the public names, from the same modules."""
    tree = ast.parse(INIT.read_text())
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
    )
    seen = {
        alias.name: node.module
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert seen == lstm_plugin.PUBLIC


def test_the_backtrader_classes_users_need_are_exported_lazily() -> None:
    probe = (
        "import sys, json, lstm_plugin\n"
        "before = sorted(m for m in ('backtrader', 'torch') if m in sys.modules)\n"
        "lstm_plugin.LSTMRebalanceStrategy, lstm_plugin.LSTMSignals, lstm_plugin.LSTMForecastAnalyzer\n"
        "print(json.dumps([before, 'backtrader' in sys.modules, 'torch' in sys.modules]))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == [[], True, False]


def tutorial_blocks() -> list[str]:
    """The Python blocks of the package docstring (``::`` paragraphs), without the setup.cfg one."""
    doc = lstm_plugin.__doc__ or ""
    blocks = re.findall(r"::\n\n((?:    .*\n|\n)+)", doc)
    python = [
        "\n".join(line[4:] for line in block.splitlines())
        for block in blocks
        if "[options.entry_points]" not in block
    ]
    assert len(python) == 2
    return python


@pytest.mark.slow
def test_the_package_docstring_tutorial_runs(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    namespace: dict[str, object] = {"__name__": "tutorial"}
    quick_use, plugin = tutorial_blocks()
    exec(compile(quick_use, "lstm_plugin/__init__.py (quick use)", "exec"), namespace)
    prediction = namespace["forecasts"].get_lstm_prediction("AAPL")  # type: ignore[attr-defined]
    assert prediction["status"] == "success", prediction
    exec(compile(plugin, "lstm_plugin/__init__.py (writing a plugin)", "exec"), namespace)
    registry = namespace["registry"]
    assert {"AAPL", "KO", "XOM"} <= set(registry.symbols("specific"))  # type: ignore[attr-defined]
    features = [record.metadata["features"] for record in registry.records("specific", "KO")]  # type: ignore[attr-defined]
    assert any(names[-1] == "ret_10" for names in features) and any("ret_10" not in n for n in features)


#: The modules a user or a plugin imports from (the ports, the typed results, the Backtrader classes):
#: only these list names in ``__all__``; every other module says it is internal with an empty one.
PUBLIC_MODULES = {
    "lstm_plugin",
    "lstm_plugin.backtrader",
    "lstm_plugin.backtrader.analyzer",
    "lstm_plugin.backtrader.backtest",
    "lstm_plugin.backtrader.bar_service",
    "lstm_plugin.backtrader.live",
    "lstm_plugin.backtrader.live.session",
    "lstm_plugin.backtrader.live.sources",
    "lstm_plugin.backtrader.report",
    "lstm_plugin.backtrader.research",
    "lstm_plugin.backtrader.signals",
    "lstm_plugin.backtrader.strategy",
    "lstm_plugin.backtrader.variants",
    "lstm_plugin.backtrader.walk_forward",
    "lstm_plugin.cli",
    "lstm_plugin.cli.main",
    "lstm_plugin.core.clock",
    "lstm_plugin.core.config",
    "lstm_plugin.core.data",
    "lstm_plugin.core.statuses",
    "lstm_plugin.dashboard",
    "lstm_plugin.model.baselines",
    "lstm_plugin.plugins",
    "lstm_plugin.plugins.manager",
    "lstm_plugin.portfolio.enhanced_manager",
    "lstm_plugin.portfolio.forecast_exits",
    "lstm_plugin.portfolio.forecast_risk",
    "lstm_plugin.portfolio.integration",
    "lstm_plugin.portfolio.manager",
    "lstm_plugin.serving.baselines",
    "lstm_plugin.serving.forecast",
    "lstm_plugin.serving.registry",
    "lstm_plugin.serving.results",
    "lstm_plugin.training.backends",
    "lstm_plugin.training.queue",
    "lstm_plugin.training.service",
    "lstm_plugin.training.trainer",
}


def declared_all(path: Path) -> list[str] | None:
    """The module's literal ``__all__`` (``None`` when it has none)."""
    for node in ast.parse(path.read_text()).body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            value = node.value
            if isinstance(value, ast.List):
                return [ast.literal_eval(item) for item in value.elts]
            return None if value is None else ["<computed>"]
    return None


def test_only_the_public_modules_export_names_and_the_rest_read_as_internal() -> None:
    package = INIT.parent
    exporting = set()
    for path in sorted(package.rglob("*.py")):
        parts = [package.name, *path.relative_to(package).with_suffix("").parts]
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        names = declared_all(path)
        if names:
            exporting.add(name)
            module = importlib.import_module(name)
            assert all(hasattr(module, n) for n in module.__all__), name
    assert exporting <= PUBLIC_MODULES, sorted(exporting - PUBLIC_MODULES)
    assert len(PUBLIC_MODULES - exporting) == 0, sorted(PUBLIC_MODULES - exporting)
