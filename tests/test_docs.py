"""The front door holds: README size, every relative link and test reference resolves, the quickstarts run."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
TEST_REFERENCE = re.compile(r"(tests/[\w/]+\.py)::(\w+)")


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_readme_is_a_front_door_not_a_manual() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.encode()) <= 15_000
    assert (
        "**Contents**" in readme and "<!-- main-command -->" in readme and "<!-- test-command -->" in readme
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not ours to check offline
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(target)
            continue
        anchor_found = not anchor or resolved.suffix != ".md" or anchor in _anchors(resolved)
        if not anchor_found:
            broken.append(target)
    assert broken == [], f"{page.name}: broken links {broken}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_cited_test_exists(page: Path) -> None:
    missing = [
        f"{path}::{name}"
        for path, name in TEST_REFERENCE.findall(page.read_text(encoding="utf-8"))
        if not (ROOT / path).exists() or f"def {name}(" not in (ROOT / path).read_text(encoding="utf-8")
    ]
    assert missing == []


def test_docstrings_cite_only_pages_in_the_repository() -> None:
    cited = set()
    for path in (ROOT / "lstm_plugin").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "§" not in text, f"{path}: cites a section of a document users do not have"
        cited.update(re.findall(r"docs/[\w\-]+\.md", text))
    assert cited and all((ROOT / page).exists() for page in cited), sorted(cited)


def _quickstart_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = []
    for heading in ("## Python quickstart", "## Backtrader quickstart"):
        section = readme.split(heading, 1)[1].split("\n## ", 1)[0]
        blocks += re.findall(r"```python\n(.*?)```", section, flags=re.S)
    return blocks


@pytest.mark.slow
def test_the_readme_quickstarts_run_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = _quickstart_blocks()
    assert len(blocks) == 3  # Python code, the prediction it prints, Backtrader code
    monkeypatch.chdir(tmp_path)  # the quickstarts' registry is ./lstm_models
    monkeypatch.setenv("LSTM_PLUGIN_TRACE", "")
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["forecasts"].get_lstm_prediction("AAPL")["status"] == "success"
    usage = namespace["strategy"].analyzers.lstm.get_analysis()["model_usage"]
    assert usage.get("specific", 0) > 0 and usage.get("universal", 0) > 0, usage
    assert os.path.isdir(tmp_path / "lstm_models")
