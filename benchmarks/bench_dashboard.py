"""The dashboard at scale, and what it costs a paper run it watches.

Run: ``python benchmarks/bench_dashboard.py [--json] [--symbols 400] [--versions 20] [--no-paper]``.

1. **Models page at scale.** A synthetic registry of ``--symbols`` × ``--versions`` model versions (one
   real ONNX graph trained here, each copy made distinct so every version has its own sha256), each
   version with a month of recorded daily forecasts (168,000 for 400 × 20), over synthetic bars. The
   baseline is what a user ran before: ``lstm-plugin status --json``'s work in this process (every
   symbol's ``get_model_status`` and the JSON). Printed: the models JSON over HTTP from a running
   server, cold (the first, which scores every track record) and warm (the median of 20 polls), as
   seconds and as ratios to the baseline; and, when Chromium is installed, the time from navigation to
   the page's table holding every row. Targets: warm ≤ 300 ms, page ≤ 1 s.
2. **A paper replay watched.** The same ``--speed 0`` replay (5 bundled symbols, 2019–2020, warm
   models, default config) run alone and with ``lstm-plugin dashboard`` (its own process, as a user
   runs it, started and warm before the clock) asked for ``/api/paper`` and ``/api/models`` every
   0.5 s, three of each, alternated. Printed: the ratio of the median watched time to the median lone
   one (target ≤ 1.10), and whether every run's journal decisions are the same (they must be: the
   dashboard only reads).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lstm_plugin import ModelRegistry, ModelTrainer, bundled_source, load_config
from lstm_plugin.core.clock import ManualClock
from lstm_plugin.core.config import validate_config
from lstm_plugin.dashboard import Board, open_sources
from lstm_plugin.serving.forecast import ForecastService
from lstm_plugin.serving.track_record import TrackRecordWriter

TINY = {"model": {"window": 10, "hidden_size": 8, "epochs": 3, "lookback_years": 4.0, "min_samples": 200}}
END = pd.Timestamp("2021-04-30")


def _bars(folder: Path, symbols: list[str], rng: np.random.Generator) -> None:
    days = pd.bdate_range("2015-01-01", END)
    for symbol in symbols:
        close = 50 * np.exp(np.cumsum(rng.normal(0.0003, 0.015, len(days))))
        frame = pd.DataFrame(
            {"open": close, "high": close * 1.01, "low": close * 0.99, "close": close, "volume": 1e6},
            index=pd.Index(days, name="date"),
        )
        frame.to_csv(folder / f"{symbol}.csv", float_format="%.4f")


def _template(folder: Path) -> tuple[bytes, dict[str, Any]]:
    """One real tiny model: its ONNX bytes and metadata."""
    config = validate_config(TINY, "bench")
    registry = ModelRegistry(folder)
    ModelTrainer(config, bundled_source(), registry, progress=False).train_specific(
        "AAPL", as_of="2018-12-31"
    )
    record = registry.resolve("specific", "AAPL")
    return record.onnx_path.read_bytes(), dict(record.metadata)


def _registry(root: Path, symbols: list[str], versions: int, rng: np.random.Generator) -> int:
    """Write ``versions`` distinct copies of one model per symbol, with a month of forecasts each."""
    import onnx

    graph, metadata = _template(root / "template")
    model = onnx.load_from_string(graph)
    writer = TrackRecordWriter(root / "registry")
    first = END - pd.DateOffset(months=versions)
    rows = 0
    for symbol in symbols:
        folder = root / "registry" / "specific" / symbol
        folder.mkdir(parents=True)
        batch = []
        for v in range(1, versions + 1):
            trained = first + pd.DateOffset(months=v - 1)
            for prop in model.metadata_props:  # the provenance the registry checks, as an export writes it
                if prop.key in ("symbol", "trained_at"):
                    prop.value = symbol if prop.key == "symbol" else trained.isoformat()
            model.doc_string = f"{symbol} v{v}"  # distinct bytes, the same graph
            blob = model.SerializeToString()
            (folder / f"v{v:06d}.onnx").write_bytes(blob)
            sha = hashlib.sha256(blob).hexdigest()
            meta = dict(metadata, symbol=symbol, version=v, onnx_file=f"v{v:06d}.onnx", sha256=sha)
            meta.update(trained_at=trained.isoformat(), data_end=(trained - pd.Timedelta(days=1)).isoformat())
            meta["train_end"] = meta["data_end"]
            meta["stage"] = "candidate" if v == versions and v % 3 == 0 else "production"
            (folder / f"v{v:06d}.json").write_text(json.dumps(meta))
            for bar in pd.bdate_range(trained, trained + pd.DateOffset(months=1) - pd.Timedelta(days=1)):
                batch.append(
                    (
                        sha,
                        "specific",
                        symbol,
                        symbol,
                        f"{bar:%Y-%m-%d}",
                        5,
                        rng.uniform(-1, 1),
                        rng.normal(0, 0.02),
                    )
                )
        (folder / "index.json").write_text(json.dumps({"versions": list(range(1, versions + 1))}))
        writer.add(batch)
        rows += len(batch)
    writer.close()
    return rows


class Served:
    """A dashboard on a free loopback port, in a thread of this process."""

    def __init__(self, board: Board) -> None:
        import uvicorn

        from lstm_plugin.cli.dashboard import bind
        from lstm_plugin.dashboard.server import build_app

        self.socket = bind("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}/"
        config = uvicorn.Config(build_app(board), log_level="warning", access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)

    def get(self, path: str) -> tuple[float, bytes]:
        start = time.perf_counter()
        with urllib.request.urlopen(self.url + path, timeout=120) as answer:
            body = answer.read()
        return time.perf_counter() - start, body

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _page_seconds(url: str, rows: int) -> float | None:
    if not Path("/usr/bin/chromium").exists():
        return None
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(url + "backtests")  # the assets cached, as on any second visit
        start = time.perf_counter()
        page.goto(url + "models")
        page.locator("table[data-table=models] tbody tr").nth(rows - 1).wait_for()  # the whole table is there
        seconds = time.perf_counter() - start
        browser.close()
    return seconds


def models_at_scale(symbols: int, versions: int) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    names = [f"S{i:03d}" for i in range(symbols)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "bars").mkdir()
        _bars(root / "bars", names, rng)
        forecasts = _registry(root, names, versions, rng)
        config = load_config(None)
        clock = ManualClock(END)
        sources = open_sources(root / "registry", [], [], config=config, data=root / "bars", clock=clock)
        start = time.perf_counter()
        status_service = ForecastService(config, sources.registry, sources.source, clock)
        json.dumps({s: status_service.get_model_status(s) for s in names}, default=str)
        baseline = time.perf_counter() - start
        served = Served(Board(sources))
        try:
            cold, body = served.get("api/models")
            warm = statistics.median(served.get("api/models")[0] for _ in range(20))
            page = _page_seconds(served.url, symbols)
        finally:
            served.stop()
    return {
        "symbols": symbols,
        "versions": versions,
        "forecasts": forecasts,
        "models_json_bytes": len(body),
        "baseline_status_seconds": round(baseline, 3),
        "models_json_cold_seconds": round(cold, 3),
        "models_json_warm_seconds": round(warm, 4),
        "warm_over_status": round(warm / baseline, 3),
        "cold_over_status": round(cold / baseline, 2),
        "page_seconds": None if page is None else round(page, 3),
    }


SPAN = ("2019-01-02", "2019-01-10", "2020-12-31")  # replay from, the first segment's end, the timed one's


def _paper(state: Path, models: Path, until: str) -> float:
    """``lstm-plugin paper`` in this process, quietly; its wall time."""
    from lstm_plugin.cli.main import main

    args = ["paper", "--replay-from", SPAN[0], "--until", until, "--speed", "0", "--quiet"]
    args += ["--symbols", "AAPL,MSFT,KO,XOM,JNJ", "--state", str(state), "--models", str(models)]
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(args) == 0
    return time.perf_counter() - start


def _replay(state: Path, models: Path, watched: bool) -> tuple[float, list[dict[str, Any]]]:
    """A replay's first days, then (watched: with a dashboard process polled every 0.5 s) the rest, timed.
    Its decisions: each rebalance's targets, forecasts and models (not the trainings' wall seconds)."""
    from lstm_plugin.backtrader.live import Journal

    _paper(state, models, SPAN[1])
    poller = _Poller(models, state) if watched else None
    try:
        seconds = _paper(state, models, SPAN[2])
    finally:
        if poller is not None:
            poller.stop()
    journal = Journal(state, readonly=True)
    decisions = [
        {k: d[k] for k in ("date", "targets", "forecasts", "models")} for d in journal.rows("decisions")
    ]
    journal.close()
    return seconds, decisions


class _Poller:
    """``lstm-plugin dashboard`` in its own process, asked for ``/api/paper`` and ``/api/models`` every 0.5 s,
    as an open browser tab does."""

    def __init__(self, models: Path, state: Path) -> None:
        command = [sys.executable, "-m", "lstm_plugin", "dashboard", "--port", "0", "--models", str(models)]
        self.process = subprocess.Popen([*command, "--state", str(state)], stderr=subprocess.PIPE, text=True)
        assert self.process.stderr is not None
        self.url = ""
        for line in self.process.stderr:
            if "dashboard on " in line:
                self.url = line.split("dashboard on ")[1].split()[0]
                break
        for path in ("api/paper", "api/models"):  # a dashboard already open: started and warm
            with urllib.request.urlopen(self.url + path, timeout=120) as answer:
                answer.read()
        self.polls = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            for path in ("api/paper", "api/models"):
                with urllib.request.urlopen(self.url + path, timeout=60) as answer:
                    answer.read()
            self.polls += 1

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=60)
        self.process.terminate()
        self.process.wait(timeout=30)


def paper_watched(pairs: int = 3) -> dict[str, Any]:
    """``pairs`` lone and watched replays, alternated; the ratio of their median times."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        warm_models = root / "warm"
        _paper(root / "warmup", warm_models, SPAN[2])  # trains what the replays need
        seconds: dict[bool, list[float]] = {False: [], True: []}
        decisions = []
        for i in range(2 * pairs):
            watched = i % 2 == 1
            models = root / f"models_{i}"
            shutil.copytree(warm_models, models)
            took, decided = _replay(root / f"state_{i}", models, watched)
            seconds[watched].append(took)
            decisions.append(decided)
    alone, watched = statistics.median(seconds[False]), statistics.median(seconds[True])
    return {
        "alone_seconds": [round(x, 2) for x in seconds[False]],
        "watched_seconds": [round(x, 2) for x in seconds[True]],
        "watched_over_alone": round(watched / alone, 3),
        "same_decisions": all(d == decisions[0] for d in decisions),
        "decisions": len(decisions[0]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=400)
    parser.add_argument("--versions", type=int, default=20)
    parser.add_argument("--no-paper", action="store_true", help="only the models page at scale")
    parser.add_argument("--no-models", action="store_true", help="only the watched paper replay")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result: dict[str, Any] = {}
    if not args.no_models:
        result["models"] = models_at_scale(args.symbols, args.versions)
    if not args.no_paper:
        result["paper"] = paper_watched()
    if args.json:
        print(json.dumps(result, indent=2))
        return
    if "models" in result:
        _print_models(result["models"])
    if "paper" in result:
        p = result["paper"]
        print(
            f"paper replay, {SPAN[1]}..{SPAN[2]}, 5 symbols, alternated: alone {p['alone_seconds']} s, "
            f"watched every 0.5 s {p['watched_seconds']} s: median {p['watched_over_alone']}x; "
            f"same decisions: {p['same_decisions']} ({p['decisions']} rebalances)"
        )


def _print_models(m: dict[str, Any]) -> None:
    print(
        f"{m['symbols']} symbols x {m['versions']} versions, {m['forecasts']:,} recorded forecasts "
        f"({m['models_json_bytes'] / 1e3:,.0f} kB of JSON)"
    )
    print(f"  baseline: status --json's work      {m['baseline_status_seconds']:.3f} s")
    cold, warm = m["models_json_cold_seconds"], m["models_json_warm_seconds"]
    print(f"  models JSON, cold (scores all)      {cold:.3f} s ({m['cold_over_status']}x)")
    print(f"  models JSON, warm (median of 20)    {warm:.4f} s ({m['warm_over_status']}x)")
    page = "no /usr/bin/chromium" if m["page_seconds"] is None else f"{m['page_seconds']:.3f} s"
    print(f"  models page usable in Chromium      {page}")


if __name__ == "__main__":
    main()
