"""Forecast exits and forecast risk against the plain strategy: thresholds chosen on a development period,
then the chosen ones looked at once on a confirmation period (docs/forecast-evidence.md, *Exits and risk*).

    python research/exits_risk_study.py --data datasets/sp500_2021 --every 10 --out /tmp/exits_study
    python research/exits_risk_study.py --bundled --out /tmp/exits_bundled   # the README's default run
    python research/exits_risk_study.py --data datasets/sp500_2021 --every 1 --out /tmp/exits_404 \
        --chosen-from /tmp/exits_study/study.json     # the thresholds the sample chose, on all 404

Each period trains its walk-forward models once (the ``base`` run, cold, into its own registry); every
threshold of the grid is then a variant on those same models. The criterion, fixed before looking: the
Sharpe difference against ``base``, paired by day. On the confirmation period the chosen exits and
risk settings, volatility targeting and their combination run once, with their 95 % intervals.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from lstm_plugin.backtrader.backtest import run_main_job
from lstm_plugin.backtrader.research import trading_in, with_changes
from lstm_plugin.backtrader.summary_table import comparison_table, variant_lines
from lstm_plugin.backtrader.variants import run_variants
from lstm_plugin.backtrader.walk_forward import run_inputs, strategy_runs
from lstm_plugin.core.config import Config, load_config
from lstm_plugin.core.data import DataSource, bundled_source, open_source

PERIODS = {"development": ("2005-01-03", "2014-12-31"), "confirmation": ("2015-01-02", "2021-04-21")}
#: the grid searched on the development period, as changes to ``lstm.exits`` / ``lstm.risk``
EXIT_GRID = [{"min_z": z, "bars": k} for z in (-1.5, -1.0, -0.5) for k in (1, 3)]
RISK_GRID = [{"min_exposure": m, "mean_scale": s} for m in (0.3, 0.6) for s in (0.005, 0.02)]


def _with(config: Config, exits: dict[str, Any], risk: dict[str, Any]) -> Config:
    lstm = config.model_dump(mode="json", by_alias=True, exclude_none=True)["lstm"]
    return with_changes(
        config, {"lstm": {**lstm, "exits": {**lstm["exits"], **exits}, "risk": {**lstm["risk"], **risk}}}
    )


def grid(
    config: Config,
    source: DataSource,
    registry: Path,
    symbols: list[str],
    span: tuple[str, str],
    points: list[tuple[dict[str, Any], str]],
) -> dict[str, Any]:
    """Train once (the plain run), then every exits and risk setting of the grid as a variant."""
    started = time.perf_counter()
    inputs = run_inputs(config, source, symbols, *span)
    result = run_main_job(config, source, registry, symbols, *span, progress=False, variants=["base"])
    trained = time.perf_counter() - started
    curve = result.equity["lstm"]
    fills = [o for o in result.orders if o["strategy"] == "lstm"]
    rows: dict[str, Any] = {}
    for changes, part in points:
        chosen = _with(inputs.config, changes if part == "exits" else {}, changes if part == "risk" else {})
        run = strategy_runs(chosen, source, registry, inputs.begin, True)[0]
        done = run_variants(inputs, run, curve, fills, ["base", part])
        rows[f"{part} {json.dumps(changes, sort_keys=True)}"] = done.summaries[part]
    return {
        "seconds_cold": trained,
        "seconds": time.perf_counter() - started,
        "base": result.summary(),
        "grid": rows,
    }


def best(rows: dict[str, Any], part: str) -> dict[str, Any]:
    """The grid point of ``part`` with the largest Sharpe difference against base."""
    key = max(
        (k for k in rows if k.startswith(part)),
        key=lambda k: rows[k]["vs_base"]["sharpe"]["value"] or float("-inf"),
    )
    return json.loads(key.split(" ", 1)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="a folder of SYMBOL.csv(.gz) files")
    parser.add_argument("--bundled", action="store_true", help="the README's default run, default thresholds")
    parser.add_argument("--every", type=int, default=10, help="every Nth symbol by name (a spread sample)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--chosen-from",
        type=Path,
        help="a study.json whose development period chose the thresholds: run the confirmation period only",
    )
    args = parser.parse_args()
    config = load_config(None)
    if args.bundled:
        result = run_main_job(
            config,
            bundled_source(),
            args.out / "registry",
            progress=False,
            variants=["base", "exits", "risk", "vol", "exits+risk"],
        )
        summary = result.summary()
        (args.out / "bundled.json").write_text(json.dumps(summary, indent=2, default=str))
        print(comparison_table(summary))
        return
    source = open_source(args.data)
    # the variants' figures need no baselines beside the LSTM: measured without them, in less time
    config = with_changes(config, {"backtest": {"baselines": []}})
    report: dict[str, Any] = {}
    dev = PERIODS["development"]
    # the stocks with bars in the period that chooses; in the confirmation period's when it runs alone
    period = PERIODS["confirmation"] if args.chosen_from is not None else dev
    symbols = trading_in(source, *period)[:: args.every]
    report["symbols"] = symbols
    if args.chosen_from is not None:
        report["chosen"] = json.loads(args.chosen_from.read_text())["chosen"]
        report["chosen_from"] = str(args.chosen_from)
    else:
        points = [(e, "exits") for e in EXIT_GRID] + [(r, "risk") for r in RISK_GRID]
        report["development"] = grid(config, source, args.out / "dev", symbols, dev, points)
        rows = report["development"]["grid"]
        report["chosen"] = {"exits": best(rows, "exits"), "risk": best(rows, "risk")}
    exits, risk = report["chosen"]["exits"], report["chosen"]["risk"]
    (args.out / "study.json").write_text(json.dumps(report, indent=2, default=str))
    print(f"{len(symbols)} symbols; chosen {report['chosen']}")
    chosen = _with(config, exits, risk)
    started = time.perf_counter()
    result = run_main_job(
        chosen,
        source,
        args.out / "confirm",
        symbols,
        *PERIODS["confirmation"],
        progress=False,
        variants=["base", "exits", "risk", "vol", "exits+risk"],
    )
    summary = result.summary()
    report["confirmation"] = {"seconds": time.perf_counter() - started, "summary": summary}
    (args.out / "study.json").write_text(json.dumps(report, indent=2, default=str))
    print("\n".join(variant_lines(summary["variants"])))


if __name__ == "__main__":
    main()
