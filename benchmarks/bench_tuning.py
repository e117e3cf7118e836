"""What a tuning costs: a 20-trial study of one symbol over 10 years against one training of it.

Run: ``python benchmarks/bench_tuning.py [--symbol AAPL] [--as-of 2015-01-02] [--trials 20]
[--backend local] [--json]``. On the bundled data with the default config (``model.lookback_years`` 10,
the default search space, 3 folds, median pruning, 2 trials at a time): the baseline is one training of
the symbol's own model with the config's settings, in this process; then a study of ``--trials`` trials
on ``--backend`` (default: two local workers, one per core of this machine) into an empty registry. It
prints the study's seconds (target: ≤ 60 s for 20 trials on 2 cores), their ratio to the training, the
share of trials pruned, and the best value against the config's own (the study's trial 0).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import pandas as pd

from lstm_plugin import ModelRegistry, ModelTrainer, bundled_source, load_config
from lstm_plugin.training.backends import make_backend
from lstm_plugin.training.tuning.study import Tuner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbol", default="AAPL")
    parser.add_argument("--as-of", default="2015-01-02")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--backend", default="local", choices=["sync", "local", "ray"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    config, source = load_config(), bundled_source()
    with tempfile.TemporaryDirectory() as folder:
        trainer = ModelTrainer(config, source, ModelRegistry(f"{folder}/train"), progress=False)
        trainer.train_specific("KO", as_of=args.as_of)  # first-use costs (imports, kernels) off the clock
        started = time.perf_counter()
        trainer.train_specific(args.symbol, as_of=args.as_of)
        training = time.perf_counter() - started
        backend = make_backend(args.backend, config)
        try:
            backend.warm_up()  # workers import torch before the clock starts, as a service's do
            tuner = Tuner(config, source, ModelRegistry(f"{folder}/tune"), backend, progress=False)
            started = time.perf_counter()
            record = tuner.tune("specific", args.symbol, pd.Timestamp(args.as_of), args.trials)
            tuning = time.perf_counter() - started
        finally:
            backend.shutdown()
    figures = {
        "symbol": args.symbol,
        "as_of": args.as_of,
        "backend": args.backend,
        "training_seconds": round(training, 2),
        "tuning_seconds": round(tuning, 1),
        "ratio": round(tuning / training, 1),
        "trials": record.trials,
        "pruned_share": round(record.pruned / record.trials, 2),
        "best_value": round(record.best_value, 4),
        "config_value": None if record.default_value is None else round(record.default_value, 4),
        "parameters": record.parameters,
    }
    if args.json:
        print(json.dumps(figures))
        return
    trials, pruned = record.trials, record.pruned
    print(f"tuning {args.symbol} as of {args.as_of}, {trials} trials on {args.backend}, default config")
    print(f"  one training (baseline):      {training:6.2f} s   1.00x")
    print(
        f"  study of {trials} trials:          {tuning:6.1f} s  {tuning / training:5.1f}x  (target <= 60 s)"
    )
    print(f"  trials pruned:                {pruned} of {trials} ({pruned / trials:.0%})")
    print(f"  best validation rank IC {record.best_value:+.4f}; the config's own {figures['config_value']}")
    print(f"  chosen: {record.parameters}")


if __name__ == "__main__":
    main()
