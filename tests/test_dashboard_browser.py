"""The dashboard in a real browser: Debian's Chromium driven by Playwright, offline, against a real registry,
a real backtest report and real paper runs made here.

Every page is opened and its figures are checked against ``status --json``, ``paper status --json``,
``service --json`` and the report's ``summary.json``; a paper replay running beside the page changes it
without a reload; text read from files renders as text; no request leaves 127.0.0.1. A screenshot of each
page is kept (in ``$LSTM_PLUGIN_SCREENSHOTS`` when set, which is how docs/dashboard.md's pictures are
made). Marked ``browser`` and ``slow``: the inner loop leaves them out; CI installs Chromium and runs them
(``LSTM_PLUGIN_REQUIRE_BROWSER=1`` makes a missing browser a failure there, not a skip).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from lstm_plugin.cli.main import main
from lstm_plugin.serving.registry import ModelRegistry

from .conftest import TINY, write_config

CHROMIUM = "/usr/bin/chromium"
SYMBOLS = "AAPL,MSFT,KO,XOM,JNJ"
EVIL = "<img src=x onerror=alert(1)>"
EVIL_CAVEAT = "<script>alert(2)</script> survivorship"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _browser_or_skip() -> None:
    pytest.importorskip("starlette")
    if not Path(CHROMIUM).exists():
        if os.environ.get("LSTM_PLUGIN_REQUIRE_BROWSER"):
            pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
        pytest.skip(f"no {CHROMIUM} (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")


def _json(capsys, args: list[str]) -> dict:
    assert main([*args, "--json"]) == 0, args
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A registry trained by ``train`` and by a backtest, its report and two paper runs."""
    _browser_or_skip()
    base = tmp_path_factory.mktemp("dashboard")
    config = write_config(base / "tiny.json", {**TINY, "lstm_service": {"backend": "sync"}})
    common = ["--models", str(base / "models"), "--config", str(config)]
    paper = ["paper", "--replay-from", "2020-01-02", "--symbols", SYMBOLS, *common]
    steps = [
        ["backtest", "--symbols", SYMBOLS, "--start", "2019-07-01", "--end", "2020-06-30", "--out",
         str(base / "report"), "--backend", "sync", "--quiet", "--variants", "exits,vol", *common],
        [*paper, "--speed", "0", "--until", "2020-03-31", "--state", str(base / "paper")],
        [*paper, "--speed", "0", "--until", "2020-01-10", "--state", str(base / "live")],
        ["train", "AAPL", "MSFT", "--as-of", "2020-04-30", "--backend", "sync", "--quiet", *common],
    ]  # fmt: skip
    for step in steps:
        assert main(step) == 0, step
    return {"base": base, "common": common, "paper": paper}


@pytest.fixture(scope="module")
def server(world):
    base = world["base"]
    command = [
        sys.executable, "-m", "lstm_plugin", "dashboard", *world["common"], "--port", "0",
        "--state", str(base / "paper"), "--state", str(base / "live"),
        "--reports", str(base / "report"),
    ]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, cwd=base)
    url = None
    for line in process.stderr:
        found = re.search(r"dashboard on (http://\S+/)", line)
        if found:
            url = found.group(1)
            break
    assert url, "the dashboard did not start"
    yield url
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    """A page whose every request is checked: anything but the dashboard's own address is aborted and
    fails the test; a dialog (an injected script running) fails it too."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    foreign: list[str] = []
    dialogs: list[str] = []
    errors: list[str] = []
    here = urlsplit(server).netloc

    def route(request_route) -> None:
        if urlsplit(request_route.request.url).netloc != here:
            foreign.append(request_route.request.url)
            request_route.abort()
        else:
            request_route.continue_()

    context.route("**/*", route)
    opened = context.new_page()
    opened.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert foreign == [], foreign
    assert dialogs == [], dialogs
    assert errors == [], errors


def screenshot(page, name: str, tmp_path: Path) -> None:
    folder = Path(os.environ.get("LSTM_PLUGIN_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"dashboard-{name}.png"), full_page=True)
    assert (folder / f"dashboard-{name}.png").stat().st_size > 10_000


def cells(page, selector: str) -> list[str]:
    return [text.strip() for text in page.locator(selector).all_inner_texts()]


def test_the_models_page_shows_what_status_says(page, server, world, capsys, tmp_path):
    status = _json(capsys, ["status", *world["common"]])
    page.goto(server + "models")
    page.wait_for_selector("table[data-table=models] tbody tr")
    for symbol, expected in status.items():
        row = page.locator(f"tr[data-symbol='{symbol}'] td")
        texts = [t.strip() for t in row.all_inner_texts()]
        assert texts[2] == expected["status"], symbol
        assert texts[3] == (f"v{expected['model_version']}" if expected["model_version"] else "–"), symbol
        if expected["reliability"] is not None:
            assert texts[7] == f"{expected['reliability']:.3f}", symbol
        track = expected["track"]
        if track and track["n"]:
            assert texts[9] == str(track["n"]) and texts[10].startswith(f"{track['hit_rate']:.3f}"), symbol
    assert "DEFAULT" in cells(page, "table[data-table=models] tbody tr td:first-child")
    screenshot(page, "models", tmp_path)
    xom = page.locator("tr[data-symbol='XOM']")
    before = xom.inner_text()
    page.evaluate("window.__same_page = true")
    train = ["train", "XOM", "--as-of", "2020-12-31", "--backend", "sync", "--quiet", *world["common"]]
    assert main(train) == 0  # a model is published while the page is open
    capsys.readouterr()
    deadline = time.monotonic() + 10
    while xom.inner_text() == before and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert xom.inner_text() != before and "2020-12-31" in xom.inner_text()
    assert page.evaluate("window.__same_page") is True  # it came without a reload
    page.fill("#models-filter", "ko")
    page.wait_for_timeout(200)
    assert cells(page, "table[data-table=models] tbody tr td:first-child") == ["KO"]
    page.goto(server + "symbol/AAPL")
    page.wait_for_selector("table[data-table=versions] tbody tr")
    records = ModelRegistry(world["base"] / "models").records("specific", "AAPL")
    expected = [f"v{r.version}" for r in sorted(records, key=lambda r: (r.trained_at, r.version))]
    assert cells(page, "table[data-table=versions] tbody tr td:first-child") == expected
    assert page.locator("table[data-table=calibration] tbody tr").count() == 5
    screenshot(page, "symbol", tmp_path)


def test_markup_read_from_files_renders_as_text(page, server, world):
    """A shelved version whose reason is markup and a report caveat that is a script, for the length of the
    test (the other pages' screenshots stay clean)."""
    registry = ModelRegistry(world["base"] / "models")
    newest = registry.records("specific", "KO")[0]
    stage, reason = newest.stage, newest.metadata.get("stage_reason", "")
    summary_path = world["base"] / "report" / "summary.json"
    summary_text = summary_path.read_text()
    registry.set_stage("specific", "KO", newest.version, "candidate", EVIL)
    summary_path.write_text(json.dumps(dict(json.loads(summary_text), caveats=[EVIL_CAVEAT])))
    try:
        page.goto(server + "models")
        ko = page.locator("tr[data-symbol='KO']")
        ko.wait_for()
        assert EVIL in ko.inner_text() and ko.locator("img").count() == 0
        page.goto(server + "backtests")
        page.wait_for_selector("section[data-report] li")
        assert EVIL_CAVEAT in page.locator("main").inner_text()
        assert page.locator("main script").count() == 0
        page.wait_for_timeout(1500)  # a polled re-render, too
        assert page.locator("main img:not(.report)").count() == 0
    finally:
        registry.set_stage("specific", "KO", newest.version, stage, reason)
        summary_path.write_text(summary_text)


def test_the_paper_page_shows_what_paper_status_says(page, server, world, capsys, tmp_path):
    status = _json(capsys, ["paper", "status", "--state", str(world["base"] / "paper")])
    page.goto(server + "paper")
    section = page.locator(f"section[data-state='{world['base'] / 'paper'}']")
    section.locator("[data-field=value]").wait_for()
    assert section.locator("[data-field=value]").inner_text() == f"{status['value']:,.2f}"
    assert section.locator("[data-field=cash]").inner_text() == f"{status['cash']:,.2f}"
    assert section.locator("[data-field=last_bar]").inner_text() == status["last_bar"]
    held = cells(section, "table[data-table=positions] tbody tr td:first-child")
    assert held == sorted(status["positions"])
    for symbol, model in status["models"].items():
        if symbol in status["positions"]:
            row = section.locator(f"table[data-table=positions] tr[data-symbol='{symbol}']")
            assert model["model"] in row.inner_text()
    assert section.locator("[data-field=heartbeat]").inner_text() == "finished"
    screenshot(page, "paper", tmp_path)


def test_the_backtests_and_training_pages_show_the_reports_and_the_service(
    page, server, world, capsys, tmp_path
):
    summary = json.loads((world["base"] / "report" / "summary.json").read_text())
    page.goto(server + "backtests")
    report = page.locator(f"section[data-report='{world['base'] / 'report'}']")
    report.locator("tr[data-run=lstm]").wait_for()
    for run in ("lstm", "technical", "buy_hold"):
        texts = [t.strip() for t in report.locator(f"tr[data-run={run}] td").all_inner_texts()]
        assert texts[1] == f"{summary[run]['final_value']:,.0f}"
        assert texts[5].startswith(f"{summary[run]['sharpe']:.2f}")
    assert summary["caveats"][0] in report.inner_text()
    for name, variant in summary["variants"].items():  # --variants exits,vol: each against base
        texts = [t.strip() for t in report.locator(f"tr[data-variant='{name}'] td").all_inner_texts()]
        assert texts[0] == name and texts[1] == f"{variant['figures']['sharpe']:.2f}", texts
        assert texts[9] == str(variant["exits"])
        sharpe = variant["vs_base"] and variant["vs_base"]["sharpe"]
        assert texts[2] == (
            "–" if not sharpe else f"{sharpe['value']:.2f} [{sharpe['low']:.2f}, {sharpe['high']:.2f}]"
        )
    assert report.locator("img.report").evaluate("img => img.naturalWidth") > 100
    screenshot(page, "backtests", tmp_path)
    service = _json(capsys, ["service", *world["common"]])["snapshot"]
    page.goto(server + "training")
    page.locator("[data-field=done]").wait_for()
    assert page.locator("[data-field=done]").inner_text() == str(service["counts"]["done"])
    assert page.locator("[data-field=failed]").inner_text() == str(service["counts"].get("failed", 0))
    done = cells(page, "table[data-table=done] tbody tr td:first-child")
    assert sorted(done) == sorted(job["symbol"] for job in service["done"])
    screenshot(page, "training", tmp_path)


def test_a_running_paper_replay_changes_the_page_without_a_reload(page, server, world):
    live = world["base"] / "live"
    page.goto(server + "paper")
    section = page.locator(f"section[data-state='{live}']")
    section.locator("[data-field=last_bar]").wait_for()
    before = section.locator("[data-field=last_bar]").inner_text()
    value = section.locator("[data-field=value]").inner_text()
    page.evaluate("window.__same_page = true")
    command = [*world["paper"], "--speed", "2", "--until", "2020-02-28", "--state", str(live)]
    replay = subprocess.Popen(
        [sys.executable, "-m", "lstm_plugin", *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while section.locator("[data-field=last_bar]").inner_text() == before and time.monotonic() < deadline:
            page.wait_for_timeout(250)
        assert section.locator("[data-field=last_bar]").inner_text() > before
        assert section.locator("[data-field=value]").inner_text() != value
        assert page.evaluate("window.__same_page") is True  # no reload: the page updated itself
    finally:
        replay.wait(timeout=300)
    assert replay.returncode == 0, replay.stderr.read()
