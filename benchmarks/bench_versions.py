"""This checkout against another version of the package: the same work, the same answers, the time of each.

Run: ``git worktree add /tmp/baseline <commit>`` then
``python benchmarks/bench_versions.py --baseline /tmp/baseline [--repeat 3] [--json]``.

A refactor that promises "behaviour unchanged, no slowdown" is held to it here. One registry is filled
by a cold main job of this checkout; then, alternately (baseline, this, this, baseline, ...: drift on a
busy machine falls on both), each version runs in a child process that puts its own tree first on
``sys.path``:

1. the warm main job (``lstm-plugin backtest`` with no arguments: every model reused, the daily
   evidence with the three baselines measured);
2. a paper replay of the last ``--days`` trading days of the bundled data on a copy of that registry
   (``sync``, no training: the session, hub, feeds, journal and forecasts).

Each child reports its seconds and a digest of what it decided (the summary's figures and orders; the
journal's days, orders and fills); the digests must agree across versions. Figures: each workload's
median seconds per version and this checkout's over the baseline's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

#: What a child runs: the workload named in argv[1] on this tree's package, printing one JSON line.
CHILD = r"""
import hashlib, json, logging, sys, time
logging.basicConfig(level=logging.ERROR)
tree, workload, registry, scratch, days = sys.argv[1:6]
sys.path.insert(0, tree)
import lstm_plugin
assert lstm_plugin.__file__.startswith(tree), lstm_plugin.__file__
from lstm_plugin import bundled_source, load_config
config, source = load_config(), bundled_source()

def digest(value):
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]

started = time.perf_counter()
if workload == "main_job":
    from lstm_plugin.backtrader.backtest import run_main_job
    result = run_main_job(config, source, registry, progress=False)
    summary = result.summary()
    fills = [{k: o[k] for k in ("date", "created", "symbol", "size", "price", "value", "commission",
                                "strategy")} for o in result.orders]  # the fields every version has
    decided = digest([summary["lstm"], summary["technical"], summary["buy_hold"], fills,
                      summary["forecast"]["evidence"]])
else:
    import pandas as pd
    from lstm_plugin.backtrader.live import PaperSession, ReplaySource
    symbols = source.symbols()
    last = max(source.load(s).index[-1] for s in symbols)
    calendar = sorted(set().union(*(source.load(s).index for s in symbols)))
    start = calendar[-int(days)]
    replay = ReplaySource(source, symbols, start, last, speed=0)
    with PaperSession(scratch, replay, config=config, registry=registry, backend="sync", train=False) as s:
        s.run()
        rows = {t: s.journal.rows(t) for t in ("days", "orders", "fills")}
    for row in rows["orders"] + rows["fills"]:
        row["client_id"] = row["client_id"].split(":", 1)[1]  # without the run's random id
    decided = digest(rows)
print(json.dumps({"seconds": time.perf_counter() - started, "decided": decided}))
"""


def child(tree: Path, workload: str, registry: Path, scratch: Path, days: int) -> dict[str, object]:
    """One workload in a fresh process on ``tree``'s package (one torch thread, as CI runs)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(tree), workload, str(registry), str(scratch), str(days)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{tree} {workload} failed:\n{done.stderr[-3000:]}")
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="a checkout of the other version")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each workload per version")
    parser.add_argument("--days", type=int, default=60, help="trading days the paper replay releases")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    trees = {"baseline": args.baseline.resolve(), "this": HERE}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        registry = root / "models"
        child(HERE, "main_job", registry, root, args.days)  # cold: fills the registry
        seconds: dict[tuple[str, str], list[float]] = {}
        decided: dict[tuple[str, str], set[object]] = {}
        for round_ in range(args.repeat):
            order = ["baseline", "this"] if round_ % 2 == 0 else ["this", "baseline"]
            for workload in ("main_job", "paper_replay"):
                for version in order:
                    run = f"{workload}-{version}-{round_}"
                    state, models = root / f"state-{run}", root / f"models-{run}"
                    shutil.copytree(registry, models)  # each run on its own copy: none sees another's writes
                    outcome = child(trees[version], workload, models, state, args.days)
                    seconds.setdefault((workload, version), []).append(float(outcome["seconds"]))  # type: ignore[arg-type]
                    decided.setdefault((workload, version), set()).add(outcome["decided"])
    figures = {}
    for workload in ("main_job", "paper_replay"):
        same = (
            decided[(workload, "baseline")] == decided[(workload, "this")]
            and len(decided[(workload, "this")]) == 1
        )
        baseline = statistics.median(seconds[(workload, "baseline")])
        this = statistics.median(seconds[(workload, "this")])
        figures[workload] = {
            "baseline_seconds": seconds[(workload, "baseline")],
            "this_seconds": seconds[(workload, "this")],
            "ratio": this / baseline,
            "same_decisions": same,
        }
    if args.json:
        print(json.dumps(figures))
        return
    for workload, f in figures.items():
        print(
            f"{workload}: baseline median {statistics.median(f['baseline_seconds']):.2f} s, this "
            f"{statistics.median(f['this_seconds']):.2f} s: {f['ratio']:.2f}x "
            f"({len(f['this_seconds'])} runs each, alternated); same decisions: {f['same_decisions']}"
        )
    if not all(f["same_decisions"] for f in figures.values()):
        raise SystemExit("the versions decided differently")


if __name__ == "__main__":
    main()
