"""The layer rule (docs/architecture.md): no subpackage imports a higher one; Backtrader and torch stay fenced
in.

Imports are read from the source (module level and inside functions alike); imports under
``if TYPE_CHECKING:`` are annotations only and are not dependencies.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lstm_plugin"

#: Lower rank first; a module may import its own layer and any lower one. Top-level modules
#: (the package root, ``__main__`` and the original design's module names) sit above every layer.
LAYERS = {
    "core": 0,
    "model": 1,
    "plugins": 2,
    "serving": 3,
    "training": 4,
    "portfolio": 5,
    "backtrader": 6,
    "dashboard": 7,
    "cli": 8,
}
TOP = len(LAYERS)
#: Third-party packages only some layers may import.
FENCED = {
    "backtrader": {"backtrader"},
    "torch": {"model", "training"},
    "starlette": {"dashboard"},
    "uvicorn": {"dashboard"},
}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_imports(source: str) -> list[tuple[int, str]]:
    """``(line, absolute module)`` of every import that runs, skipping ``if TYPE_CHECKING:`` blocks."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                raise AssertionError(
                    f"line {node.lineno}: relative import; the package uses absolute imports"
                )
            found.append((node.lineno, node.module or ""))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return found


def layer_of(relative: Path) -> str | None:
    """The subpackage a file belongs to (``None`` for top-level modules)."""
    return relative.parts[0] if len(relative.parts) > 1 else None


def violations(package: Path, name: str = "lstm_plugin") -> list[str]:
    """Every import in ``package`` that breaks the layer rule or a fence, as ``file:line: why``."""
    problems = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        layer = layer_of(relative)
        rank = LAYERS[layer] if layer else TOP
        for line, module in runtime_imports(path.read_text()):
            where = f"{relative}:{line}"
            parts = module.split(".")
            if parts[0] == name:
                if layer and len(parts) == 1:
                    problems.append(f"{where}: imports the package root from a layer")
                elif len(parts) > 1 and LAYERS.get(parts[1], -1) > rank:
                    problems.append(
                        f"{where}: {layer or 'top'} imports the higher layer {parts[1]} ({module})"
                    )
            elif parts[0] in FENCED and layer not in FENCED[parts[0]]:
                problems.append(f"{where}: only {', '.join(sorted(FENCED[parts[0]]))} may import {parts[0]}")
    return problems


def test_every_layer_is_a_documented_subpackage_that_imports() -> None:
    assert {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()} == set(LAYERS)
    for layer in LAYERS:
        module = importlib.import_module(f"lstm_plugin.{layer}")
        assert module.__doc__ and "import" in module.__doc__.lower(), (
            f"{layer}/__init__.py must say what it may import"
        )


def test_no_layer_imports_a_higher_one_and_the_fences_hold() -> None:
    assert violations(PACKAGE) == []


def _fixture_package(root: Path, files: dict[str, str]) -> Path:
    package = root / "lstm_plugin"
    for relative, text in files.items():
        path = package / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return package


@pytest.mark.parametrize(
    ("planted", "expected"),
    [
        (
            "from lstm_plugin.training.service import TrainingService\n",
            "core imports the higher layer training",
        ),
        ("def f():\n    from lstm_plugin.cli import main\n", "core imports the higher layer cli"),
        ("import lstm_plugin\n", "imports the package root"),
        ("import backtrader as bt\n", "only backtrader may import backtrader"),
        ("import torch\n", "only model, training may import torch"),
    ],
)
def test_a_planted_upward_import_is_caught(tmp_path: Path, planted: str, expected: str) -> None:
    package = _fixture_package(
        tmp_path,
        {
            "core/__init__.py": "",
            "core/clock.py": planted,
            "training/__init__.py": "",
            "training/service.py": "from lstm_plugin.core.clock import x\nimport torch\n",
        },
    )
    found = violations(package)
    assert len(found) == 1 and found[0].startswith("core/clock.py:") and expected in found[0], found


def test_annotation_only_imports_are_not_dependencies(tmp_path: Path) -> None:
    planted = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from lstm_plugin.training.policy import ModelState\n"
    )
    assert violations(_fixture_package(tmp_path, {"core/__init__.py": "", "core/types.py": planted})) == []


def test_no_module_over_400_lines_and_no_function_over_60() -> None:
    long_files, long_functions = [], []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        relative = path.relative_to(PACKAGE)
        if len(text.splitlines()) > 400:
            long_files.append(f"{relative} ({len(text.splitlines())} lines)")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 60:
                    long_functions.append(f"{relative}:{node.lineno} {node.name} ({length} lines)")
    assert long_files == [] and long_functions == []
