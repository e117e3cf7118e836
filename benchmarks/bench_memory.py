"""Peak memory of the main job's whole process tree (driver and training workers), cold and warm.

Run: ``python benchmarks/bench_memory.py [--json] [--sp500 N]``. Each case runs ``lstm-plugin backtest``
as a child process on an empty registry (cold) or the one a cold case filled (warm), and a thread samples
every process of its tree every 0.2 s from ``/proc`` (Linux):

- **RSS** summed over the tree, the figure ``top`` shows added up (shared library pages count once per
  process);
- **PSS** summed over the tree: each shared page split between the processes that map it, so the sum is
  what the tree really holds;
- the driver's own RSS.

Cases (defaults; docs/benchmarks.md, *Memory*):

1. the README's main job, cold (target: the tree within 1.0 GiB);
2. the same, warm (every model reused), whose output must equal the cold run's;
3. a cold walk-forward twice as long (from 2014-11-03 instead of 2018-01-02: twice the bars, versions
   and rebalances): memory flat in the number of model versions means its peak is within 10 % of case 1;
4. with ``--sp500 N``: a cold walk-forward on the first N stocks of ``datasets/sp500_2021`` by name, over
   the default span (target at 100: within 2 GiB), and its warm rerun.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = os.sysconf("SC_PAGE_SIZE")
GIB = 2**30


def _children() -> dict[int, list[int]]:
    """Every process's children, from ``/proc/*/stat``."""
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(parent, []).append(int(entry))
    return tree


def _tree(pid: int) -> list[int]:
    children, found, todo = _children(), [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _rss(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE


def _pss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


@dataclass
class Peak:
    seconds: float = 0.0
    tree_rss_gib: float = 0.0
    tree_pss_gib: float = 0.0
    driver_rss_gib: float = 0.0
    processes: int = 0


def sampled_run(command: list[str], every: float = 0.2) -> tuple[Peak, str]:
    """Run ``command``; its tree's peak memory and its standard output."""
    peak = Peak()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            rss = pss = 0
            pids = _tree(process.pid)
            for pid in pids:
                try:
                    rss, pss = rss + _rss(pid), pss + _pss(pid)
                    if pid == process.pid:
                        peak.driver_rss_gib = max(peak.driver_rss_gib, _rss(pid) / GIB)
                except OSError:  # it ended between the listing and the read
                    continue
            peak.tree_rss_gib = max(peak.tree_rss_gib, rss / GIB)
            peak.tree_pss_gib = max(peak.tree_pss_gib, pss / GIB)
            peak.processes = max(peak.processes, len(pids))
            done.wait(every)

    started = time.perf_counter()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = process.communicate()
    peak.seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if process.returncode:
        sys.exit(f"{' '.join(command)} failed ({process.returncode}): {err.strip()[-2000:]}")
    return peak, out


def backtest(models: Path, report: Path, *extra: str) -> list[str]:
    executable = Path(sys.executable).with_name("lstm-plugin")
    folders = ["--models", str(models), "--out", str(report)]
    return [str(executable), "backtest", *folders, "--json", "-q", *extra]


def decisions(out: str) -> dict[str, object]:
    """What a run decided: its strategies' figures (not its timings, paths or training counts)."""
    summary = json.loads(out)
    return {key: summary[key] for key in ("lstm", "technical", "buy_hold") if key in summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--sp500", type=int, default=0, help="also run N stocks of datasets/sp500_2021")
    args = parser.parse_args()
    figures: dict[str, dict[str, float | int]] = {}
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        cold, cold_out = sampled_run(backtest(folder / "m", folder / "r1"))
        warm, warm_out = sampled_run(backtest(folder / "m", folder / "r2"))
        assert decisions(warm_out) == decisions(cold_out), "the warm run must decide as the cold run did"
        assert json.loads(warm_out)["forecast"]["trained"] == 0, "the warm run must reuse every model"
        longer, _ = sampled_run(backtest(folder / "long", folder / "r3", "--start", "2014-11-03"))
        figures = {"cold": asdict(cold), "warm": asdict(warm), "twice_as_long": asdict(longer)}
        if args.sp500:
            data = ROOT / "datasets" / "sp500_2021"
            symbols = sorted(p.name.split(".")[0] for p in data.glob("*.csv.gz"))[: args.sp500]
            wide = ("--data", str(data), "--symbols", ",".join(symbols))
            big, big_out = sampled_run(backtest(folder / "sp", folder / "r4", *wide))
            big_warm, big_warm_out = sampled_run(backtest(folder / "sp", folder / "r5", *wide))
            assert decisions(big_warm_out) == decisions(big_out), "the warm run must decide as the cold one"
            figures[f"sp500_{args.sp500}_cold"] = asdict(big)
            figures[f"sp500_{args.sp500}_warm"] = asdict(big_warm)
    growth = figures["twice_as_long"]["tree_rss_gib"] / figures["cold"]["tree_rss_gib"]
    if args.json:
        print(json.dumps({"cases": figures, "twice_as_long_over_cold": growth}))
        return
    print("peak memory of the process tree (sampled every 0.2 s), lstm-plugin backtest:")
    print(f"  {'case':28s} {'seconds':>8s} {'tree RSS':>9s} {'tree PSS':>9s} {'driver':>7s} {'procs':>5s}")
    for name, peak in figures.items():
        print(
            f"  {name:28s} {peak['seconds']:8.1f} {peak['tree_rss_gib']:7.2f} G "
            f"{peak['tree_pss_gib']:7.2f} G {peak['driver_rss_gib']:5.2f} G {peak['processes']:5d}"
        )
    print(f"  twice as long / cold, tree RSS: {growth:.2f}x (target <= 1.10x)")


if __name__ == "__main__":
    main()
