"""The front door holds: README size, every relative link and test reference resolves, the quickstarts run."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
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


FENCE = re.compile(r"^```(\w*)\n(.*?)^```", flags=re.S | re.M)


def readme_blocks() -> list[tuple[str, str]]:
    """Every fenced block of the README, in order: ``(language, text)`` (``""`` for printed output)."""
    return FENCE.findall((ROOT / "README.md").read_text(encoding="utf-8"))


def served_once(command: str, cwd: Path, path: str) -> str:
    """Start the server ``command`` starts, read ``path`` from it once, stop it."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    process = subprocess.Popen(
        ["bash", "-c", f"exec {command}"], cwd=cwd, env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stderr is not None
        url = next(
            line.split("dashboard on ")[1].split()[0] for line in process.stderr if "dashboard on " in line
        )
        with urllib.request.urlopen(url + path, timeout=120) as answer:
            return answer.read().decode()
    finally:
        process.terminate()
        process.wait(timeout=30)


def fresh_clone(folder: Path) -> Path:
    """The files a clone of this checkout holds (tracked, and untracked ones git does not ignore): no
    registry, no report, no virtual environment."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, folder / name)
    return folder


def shell(command: str, cwd: Path) -> str:
    """``command`` under bash as a user types it, with this environment's ``lstm-plugin`` on the PATH."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    env.pop("LSTM_PLUGIN_TRACE", None)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, f"{command}\n{done.stderr[-3000:]}"
    return done.stdout


def install_steps(block: str) -> tuple[list[str], str]:
    """A two-command block's install steps and the command it installs for."""
    *steps, command = block.strip().split(" && ")
    return steps, command


@pytest.mark.slow
def test_every_readme_code_block_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each section from a fresh clone (as its output shows: ``model_version`` 1, "models 0" on the first
    paper day), in the README's order: the main command prints the README's output byte for byte, the
    Python blocks run and the printed prediction has the keys and values shown, the Backtrader block
    serves models, and the paper commands print the lines shown. The test command is the line
    ``.ci/run`` itself runs; its install steps are the main command's."""
    blocks = readme_blocks()
    languages = [language for language, _ in blocks]
    assert languages == ["bash", "bash", "", "python", "python", "python", "bash", "", "bash"]
    (_, main_block), (_, test_block), (_, main_output) = blocks[:3]
    (_, quickstart), (_, printed), (_, backtrader) = blocks[3:6]
    (_, paper), (_, paper_output), (_, dashboard) = blocks[6:]

    steps, main_command = install_steps(main_block)
    test_steps, test_command = install_steps(test_block)
    assert steps[:3] == test_steps[:3] and steps[3] == "pip install -e ."
    assert test_steps[3] == 'pip install -e ".[test]"'  # the test extra on top of the main command's
    assert main_command == "lstm-plugin backtest" and test_command == "python -m pytest -q"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "<!-- test-command -->" in ci and 'bash -euo pipefail -c "$command"' in ci

    main_clone = fresh_clone(tmp_path / "main")
    assert shell(main_command, main_clone) == main_output  # the main job, cold, into an empty ./lstm_models

    monkeypatch.chdir(fresh_clone(tmp_path / "quickstarts"))  # their registry is ./lstm_models
    monkeypatch.setenv("LSTM_PLUGIN_TRACE", "")
    namespace: dict = {}
    exec(compile(quickstart, "README.md", "exec"), namespace)
    shown = eval(printed, {})  # the README's own text
    served = namespace["forecasts"].get_lstm_prediction(
        "AAPL", force_refresh=True
    )  # as first asked: not cached
    assert set(shown) == set(served)
    for key, value in shown.items():  # printed rounded to two or three places
        if isinstance(value, float | dict):
            assert served[key] == pytest.approx(value, abs=0.006), key
        else:
            assert served[key] == value, key
    exec(compile(backtrader, "README.md", "exec"), namespace)
    usage = namespace["strategy"].analyzers.lstm.get_analysis()["model_usage"]
    assert usage.get("specific", 0) > 0 and usage.get("universal", 0) > 0, usage

    paper_clone = fresh_clone(tmp_path / "paper")
    printed_lines = shell(paper, paper_clone).splitlines()
    first, ellipsis, last = paper_output.strip().splitlines()
    assert ellipsis == "..." and printed_lines[0] == first and last in printed_lines

    dashboard_steps, dashboard_command = install_steps(dashboard.split("#")[0])
    assert dashboard_steps == ['pip install -e ".[dashboard]"']  # the test extra holds the same packages
    assert dashboard_command.strip() == "lstm-plugin dashboard --state S"
    watched = json.loads(served_once(dashboard_command.strip() + " --port 0", paper_clone, "api/paper"))
    assert watched[0]["state"] == "S" and watched[0]["last_bar"] == last.split()[0]
