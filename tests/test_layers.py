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


def code_lines(tree: ast.AST, source: str, node: ast.AST | None = None) -> int:
    """Lines of ``node`` (default: the whole module) that hold code: no blank line, comment or docstring."""
    lines = source.splitlines()
    first, last = (1, len(lines)) if node is None else (node.lineno, node.end_lineno or node.lineno)  # type: ignore[attr-defined]
    docstrings: set[int] = set()
    for owner in ast.walk(tree):
        if (
            isinstance(owner, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and owner.body
        ):
            head = owner.body[0]
            if (
                isinstance(head, ast.Expr)
                and isinstance(head.value, ast.Constant)
                and isinstance(head.value.value, str)
            ):
                docstrings.update(range(head.lineno, (head.end_lineno or head.lineno) + 1))
    return sum(
        1
        for number in range(first, last + 1)
        if number not in docstrings
        and lines[number - 1].strip()
        and not lines[number - 1].strip().startswith("#")
    )


#: Generous guards, counted in code lines: a module or function past them has a seam to split along.
MODULE_CODE_LINES, FUNCTION_CODE_LINES = 600, 60


def test_no_module_over_600_code_lines_and_no_function_over_60() -> None:
    long_files, long_functions = [], []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        tree = ast.parse(text)
        relative = path.relative_to(PACKAGE)
        if code_lines(tree, text) > MODULE_CODE_LINES:
            long_files.append(f"{relative} ({code_lines(tree, text)} code lines)")
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = code_lines(tree, text, node)
                if length > FUNCTION_CODE_LINES:
                    long_functions.append(f"{relative}:{node.lineno} {node.name} ({length} code lines)")
    assert long_files == [] and long_functions == []


def test_docstrings_and_comments_are_not_counted() -> None:
    source = '"""Module.\n\nMore."""\n\n# a comment\ndef f():\n    """Doc."""\n    return 1\n'
    tree = ast.parse(source)
    function = tree.body[1]
    assert code_lines(tree, source) == 2 and code_lines(tree, source, function) == 2


def module_of(path: Path, package: Path, name: str) -> str:
    parts = [name, *path.relative_to(package).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: Path, name: str = "lstm_plugin") -> dict[str, set[str]]:
    """Module -> the package's modules it imports: at module level, inside functions and under
    ``if TYPE_CHECKING:`` alike (a cycle of annotations is still two modules that need each other).
    ``from a import b`` names ``a.b`` when that is a module."""
    modules = {module_of(path, package, name): path for path in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text())
        targets: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                submodules = {f"{node.module}.{a.name}" for a in node.names} & set(modules)
                targets |= submodules if len(submodules) == len(node.names) else submodules | {node.module}
            elif isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
        graph[module] = {t for t in targets if t in modules and t != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of ``graph``: its strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_anywhere() -> None:
    assert cycles(import_graph(PACKAGE)) == []


def test_a_planted_cycle_is_caught(tmp_path: Path) -> None:
    package = _fixture_package(
        tmp_path,
        {
            "__init__.py": "",
            "cli/__init__.py": "",
            "cli/main.py": "from lstm_plugin.cli.commands import COMMANDS\n",
            "cli/commands.py": "def f():\n    from lstm_plugin.cli.main import EXIT\n",
            "cli/types.py": "import typing\nif typing.TYPE_CHECKING:\n    from lstm_plugin.cli.run import X\n",  # noqa: E501
            "cli/run.py": "from lstm_plugin.cli.types import Y\n",
        },
    )
    found = cycles(import_graph(package))  # a function's import and an annotation's count too
    assert sorted(found) == [
        ["lstm_plugin.cli.commands", "lstm_plugin.cli.main"],
        ["lstm_plugin.cli.run", "lstm_plugin.cli.types"],
    ]
