"""The hostile-input table, part one: broken CSV files and config files (run by ``tests/test_hostile.py``)."""

from __future__ import annotations

import gzip
import os

from .hostile_builders import (
    Case,
    aapl_lines,
    cell,
    config_case,
    csv_case,
    first_days_only,
    predict_with_data,
    slashed,
    two_slash_orders,
    with_offsets,
)
from .hostile_report_builders import plain, success_json, ten_rows_train

INPUT_CASES: list[Case] = [
    # ---- CSV files
    csv_case(
        "ddmm-ambiguous",
        first_days_only,
        r"AAPL\.csv › line 2 › dates are ambiguous.*DD/MM/YYYY or MM/DD/YYYY",
    ),
    csv_case("two-slash-orders", two_slash_orders, r"AAPL\.csv › line \d+ › dates mix DD/MM/YYYY"),
    csv_case(
        "two-formats",
        lambda ls: [*ls[:50], *slashed("mdy")(ls)[50:]],
        r"AAPL\.csv › line 51 › date is written DD/MM/YYYY or MM/DD/YYYY but the file's dates are YYYY-MM-DD",
    ),
    csv_case(
        "impossible-date",
        lambda ls: [*ls[:9], cell(ls[9], 0, "2000-02-30"), *ls[10:]],
        r"AAPL\.csv › line 10 › date is not a date \(got: '2000-02-30'\)",
    ),
    csv_case(
        "word-as-date",
        lambda ls: [*ls[:9], cell(ls[9], 0, "soon"), *ls[10:]],
        r"AAPL\.csv › line 10 › date is not a date \(got: 'soon'\)",
    ),
    csv_case(
        "duplicate-date",
        lambda ls: [*ls[:9], ls[8], *ls[10:]],
        r"AAPL\.csv › line 10 \(1999-11-10\) › duplicate date",
    ),
    csv_case(
        "missing-open",
        lambda ls: [*ls[:9], cell(ls[9], 1, ""), *ls[10:]],
        r"AAPL\.csv › line 10 \(1999-11-11\) › open is missing",
    ),
    csv_case(
        "text-in-high",
        lambda ls: [*ls[:9], cell(ls[9], 2, "12;5"), *ls[10:]],
        r"line 10 \(1999-11-11\) › high is not a number \(got: '12;5'\)",
    ),
    csv_case(
        "negative-close",
        lambda ls: [*ls[:9], cell(ls[9], 4, "-3"), *ls[10:]],
        r"line 10 \(1999-11-11\) › prices must be positive",
    ),
    csv_case(
        "zero-low",
        lambda ls: [*ls[:9], cell(ls[9], 3, "0"), *ls[10:]],
        r"line 10 \(1999-11-11\) › prices must be positive",
    ),
    csv_case(
        "huge-volume",
        lambda ls: [*ls[:99], cell(ls[99], 6, "1e308"), *ls[100:]],
        r"line 100 \(2000-03-22\) › volume must be at most 1e\+15",
    ),
    csv_case(
        "huge-price",
        lambda ls: [*ls[:99], cell(cell(ls[99], 2, "1e308"), 5, "1e308"), *ls[100:]],
        r"line 100 \(2000-03-22\) › prices must be between 1e-08 and 1e\+09",
    ),
    csv_case(
        "tiny-tick",
        lambda ls: [*ls[:99], cell(ls[99], 3, "1e-300"), *ls[100:]],
        r"line 100 \(2000-03-22\) › prices must be between",
    ),
    csv_case(
        "close-above-high",
        lambda ls: [*ls[:99], cell(ls[99], 4, "999"), *ls[100:]],
        r"line 100 \(2000-03-22\) › close must be between low and high",
    ),
    csv_case(
        "open-below-low",
        lambda ls: [*ls[:99], cell(ls[99], 1, "1"), *ls[100:]],
        r"line 100 \(2000-03-22\) › open must be between low and high",
    ),
    csv_case(
        "low-above-high",
        lambda ls: [*ls[:99], cell(ls[99], 3, "999"), *ls[100:]],
        r"line 100 \(2000-03-22\) › low must not exceed high",
    ),
    csv_case(
        "negative-volume",
        lambda ls: [*ls[:99], cell(ls[99], 6, "-1"), *ls[100:]],
        r"line 100 \(2000-03-22\) › volume must not be negative",
    ),
    csv_case(
        "infinite-open",
        lambda ls: [*ls[:99], cell(ls[99], 1, "inf"), *ls[100:]],
        r"line 100 \(2000-03-22\) › values must be finite",
    ),
    csv_case(
        "adj-close-unit",
        lambda ls: [*ls[:99], cell(ls[99], 5, "1e-5"), *ls[100:]],
        r"line 100 \(2000-03-22\) › Adj Close / Close must be between",
    ),
    csv_case(
        "no-close-column",
        lambda ls: [line.rsplit(",", 3)[0] + "," + line.rsplit(",", 1)[1] for line in ls],
        r"missing columns: close",
    ),
    csv_case("header-only", lambda ls: ls[:1], r"AAPL\.csv › no rows of data"),
    csv_case("empty-file", lambda ls: [], r"AAPL\.csv › empty file"),
    csv_case(
        "ragged-row",
        lambda ls: [*ls[:9], ls[9].rstrip("\n") + ",1,2,3\n", *ls[10:]],
        r"AAPL\.csv › cannot parse CSV",
    ),
    Case(
        "csv-binary",
        predict_with_data({"AAPL.csv": os.urandom(3000)}),
        2,
        r"AAPL\.csv › (cannot parse CSV|missing columns|empty file)",
    ),
    Case(
        "csv-truncated-gzip",
        predict_with_data({"AAPL.csv.gz": gzip.compress("".join(aapl_lines(400)).encode())[:900]}),
        2,
        r"AAPL\.csv\.gz › cannot parse CSV",
    ),
    Case(
        "csv-csv-and-gz",
        predict_with_data(
            {"AAPL.csv": aapl_lines(300), "AAPL.csv.gz": gzip.compress("".join(aapl_lines(200)).encode())}
        ),
        2,
        r"AAPL\.csv and AAPL\.csv\.gz both hold symbol AAPL; keep one",
    ),
    Case(
        "csv-two-cases",
        predict_with_data({"AAPL.csv": aapl_lines(300), "aapl.csv": aapl_lines(200)}),
        2,
        r"AAPL\.csv and aapl\.csv both hold symbol AAPL; keep one",
    ),
    Case(
        "csv-unknown-symbol",
        lambda f: ["predict", "ZZZ", *predict_with_data({"AAPL.csv": aapl_lines(300)})(f)[2:]],
        2,
        r"unknown symbol ZZZ in data",
    ),
    Case(
        "csv-missing-folder",
        plain(["predict", "AAPL", "--data", "nowhere"]),
        2,
        r"nowhere › data folder not found",
    ),
    Case(
        "csv-ten-rows-train",
        ten_rows_train,
        2,
        r"error: train › AAPL › .*insufficient data › need at least 300 labelled windows \(got: 0\)",
    ),
    Case(
        "csv-ddmm-whole-file",
        predict_with_data({"AAPL.csv": slashed("dmy")(aapl_lines())}),
        0,
        r"^$",
        check=success_json,
    ),
    Case(
        "csv-mixed-offsets",
        predict_with_data({"AAPL.csv": with_offsets(("-05:00", "-04:00", "+09:00", "Z"))(aapl_lines())}),
        0,
        r"^$",
        check=success_json,
    ),
    # ---- config files
    config_case(
        "nan-cash",
        '{"backtest": {"cash": NaN}}',
        r"bad\.json › backtest\.cash › must be a finite number \(got: NaN\)$",
    ),
    config_case(
        "nan-dollar-volume",
        '{"portfolio": {"min_dollar_volume": NaN}}',
        r"portfolio\.min_dollar_volume › must be a finite number",
    ),
    config_case(
        "inf-candidates",
        '{"portfolio": {"candidate_multiple": Infinity}}',
        r"portfolio\.candidate_multiple › must be a finite number \(got: Infinity\)",
    ),
    config_case(
        "nan-weight-decay",
        '{"model": {"weight_decay": NaN}}',
        r"model\.weight_decay › must be a finite number",
    ),
    config_case(
        "inf-backoff",
        '{"lstm_service": {"retry_backoff_seconds": -Infinity}}',
        r"lstm_service\.retry_backoff_seconds › must be a finite number",
    ),
    config_case(
        "huge-interval",
        '{"lstm": {"training_interval": 1e400}}',
        r"lstm\.training_interval › must be an integer \(got: Infinity\)",
    ),
    config_case(
        "huge-ttl",
        {"lstm": {"prediction_cache_ttl": 10**30}},
        r"lstm\.prediction_cache_ttl › must be between 0 and 31622400",
    ),
    config_case(
        "huge-candidates",
        {"portfolio": {"candidate_multiple": 1e300}},
        r"portfolio\.candidate_multiple › must be between 1 and 100",
    ),
    config_case(
        "deep-nesting",
        '{"a":' * 100_000 + "1" + "}" * 100_000,
        r"bad\.json › \(top level\) › nested too deeply",
    ),
    config_case("typo", {"lstm": {"wieght": 0.3}}, r"lstm\.wieght › unknown key \(did you mean 'weight'\?\)"),
    config_case(
        "weight",
        {"lstm": {"weight": 1.7}},
        r"^lstm-plugin: error: bad\.json › lstm\.weight › must be between 0 and 1 \(got: 1\.7\)$",
    ),
    config_case("syntax", '{"lstm": {"weight": 0.3,}}', r"bad\.json › line 1, column \d+ › invalid JSON"),
    config_case("top-level-list", "[1, 2]", r"bad\.json › \(top level\) › must be a JSON object"),
    config_case(
        "bad-symbol", {"data": {"symbols": ["AAPL", "../etc"]}}, r"data\.symbols\.1 › must be 1-20 characters"
    ),
    config_case(
        "rebalance-zero",
        {"backtest": {"rebalance": 0}},
        r"backtest\.rebalance › must be 'monthly', 'weekly' or a number of bars",
        command="backtest",
    ),
    config_case("not-utf8", b'{"lstm": {"weight": 0.3}}\xff\xfe', r"bad\.json › cannot read config"),
    Case(
        "config-missing",
        plain(["predict", "AAPL", "--config", "nope.json"]),
        2,
        r"nope\.json › cannot read config › file not found",
    ),
    Case(
        "config-folder",
        lambda f: (f / "cfg").mkdir() or ["predict", "AAPL", "--config", "cfg"],
        2,
        r"cfg › cannot read config",
    ),
]
