"""Hostile input, run as a user would: real commands on broken CSV files, configs, registries and report
folders.

Every case asserts three things: the exit status (2 for the user's mistake, 0 where a broken model
is skipped and an older one serves), the message that names the culprit (one ``error:`` line on
stderr and nothing else for exit 2; no traceback ever), and that the versions registered before the
command are all still there and still served. Add a row to ``CASES`` for every new way in; the
builders are in ``tests/hostile_builders.py``.

The commands run as real processes, several at a time, once per module.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from lstm_plugin import ModelRegistry

from .conftest import TINY
from .hostile_builders import (
    MODELS,
    SERVED_AT,
    Case,
    aapl_lines,
    both_versions_kept,
    candidate_kept_and_served,
    cell,
    config_case,
    csv_case,
    damage_newest,
    first_days_only,
    foreign_onnx,
    index_case,
    keep_one,
    leftovers,
    leftovers_cleared,
    link_inside,
    linked_lock,
    linked_symbol,
    linked_type_folder,
    lstm_backtest_into_file,
    nothing_trained,
    odd_graph,
    orphan_kept,
    orphan_untouched,
    out_holds_foreign,
    out_is_file,
    out_is_link,
    outside_untouched,
    plain,
    precious_untouched,
    predict_with_data,
    registry_case,
    rehash,
    report_case,
    served_from_v1,
    slashed,
    snapshot,
    status_after_damage,
    status_from_v1,
    stray,
    success_json,
    ten_rows_train,
    two_slash_orders,
    wiped_index,
    with_offsets,
)

CASES: list[Case] = [
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
    # ---- registry
    registry_case(
        "wiped-index",
        wiped_index,
        r"index\.json listed \[\] but the folder holds versions \[1\]; rebuilt the index",
        check=both_versions_kept,
    ),
    index_case("index-overflow", '{"versions": [1e400]}', r"index\.json does not list version numbers"),
    index_case("index-garbage", "garbage", r"index\.json is unreadable"),
    index_case("index-list", "[1, 2]", r"index\.json does not list version numbers"),
    index_case("index-strings", '{"versions": ["one"]}', r"index\.json does not list version numbers"),
    index_case(
        "index-missing-version",
        '{"versions": [1, 7]}',
        r"v000007\.json: index\.json lists it but the metadata file is missing",
    ),
    registry_case(
        "bad-trained-at",
        damage_newest(lambda m, p: dict(m, trained_at="yesterday-ish")),
        r"v000002\.json: trained_at is not a date",
        check=served_from_v1,
    ),
    registry_case(
        "bad-trained-at-status",
        status_after_damage,
        r"v000002\.json: trained_at is not a date",
        check=status_from_v1,
    ),
    registry_case(
        "bad-version",
        damage_newest(lambda m, p: dict(m, version="two")),
        r"v000002\.json: metadata says version 'two'",
        check=served_from_v1,
    ),
    registry_case(
        "bad-window",
        damage_newest(lambda m, p: dict(m, window="ten")),
        r"v000002\.json: window and horizon must be integers",
        check=served_from_v1,
    ),
    registry_case(
        "bad-metrics",
        damage_newest(lambda m, p: dict(m, metrics=[1, 2])),
        r"v000002\.json: metrics must be an object",
        check=served_from_v1,
    ),
    registry_case(
        "metadata-string",
        damage_newest(lambda m, p: "just a string"),
        r"v000002\.json: metadata is not a JSON object",
        check=served_from_v1,
    ),
    registry_case(
        "metadata-symbol",
        damage_newest(lambda m, p: dict(m, symbol="MSFT")),
        r"v000002\.json: metadata is for symbol 'MSFT', not AAPL",
        check=served_from_v1,
    ),
    registry_case(
        "onnx-path-outside",
        damage_newest(lambda m, p: dict(m, onnx_file="../MSFT/v000001.onnx")),
        r"onnx_file must be v000002\.onnx",
        check=served_from_v1,
    ),
    registry_case(
        "onnx-is-folder",
        damage_newest(
            lambda m, p: (p.with_suffix(".onnx").unlink(), p.with_suffix(".onnx").mkdir()) and None
        ),
        r"v000002\.onnx: not a regular file",
        check=served_from_v1,
    ),
    registry_case(
        "onnx-truncated",
        damage_newest(
            lambda m, p: (
                p.with_suffix(".onnx").write_bytes(p.with_suffix(".onnx").read_bytes()[:500]) and None
            )
        ),
        r"v000002\.onnx: sha256 mismatch",
        check=served_from_v1,
    ),
    registry_case(
        "onnx-garbage-rehashed",
        damage_newest(
            lambda m, p: (p.with_suffix(".onnx").write_bytes(b"\x08\x07garbage" * 50), rehash(p, m))[1]
        ),
        r"v000002\.onnx: not a readable ONNX model",
        check=served_from_v1,
    ),
    registry_case(
        "onnx-other-symbol",
        damage_newest(foreign_onnx),
        r"v000002\.onnx: the ONNX file was exported for symbol 'MSFT', not 'AAPL'",
        check=served_from_v1,
    ),
    registry_case(
        "onnx-wrong-shape",
        damage_newest(odd_graph("features", (12, 4))),
        r"v000002\.onnx: the graph's input has shape \(None, 12, 4\)",
        check=served_from_v1,
    ),
    registry_case(
        "onnx-wrong-input",
        damage_newest(odd_graph("x", (10, 10))),
        r"v000002\.onnx: the graph has no input named 'features'",
        check=served_from_v1,
    ),
    registry_case(
        "trained-at-earlier",
        damage_newest(lambda m, p: dict(m, trained_at="2015-06-30T00:00:00")),
        r"v000002\.json: data_end 2015-12-31 is after trained_at 2015-06-30",
        check=served_from_v1,
    ),
    registry_case(
        "trained-at-and-ends-earlier",
        damage_newest(
            lambda m, p: dict(
                m,
                trained_at="2015-06-30T00:00:00",
                data_end="2015-06-30T00:00:00",
                train_end="2015-06-01T00:00:00",
            )
        ),
        r"v000002\.onnx: trained_at 2015-06-30T00:00:00 is earlier than the 2015-12-31T00:00:00 the model "
        r"was exported with",
        check=served_from_v1,
    ),
    registry_case(
        "data-end-after",
        damage_newest(lambda m, p: dict(m, data_end="2017-01-03T00:00:00")),
        r"v000002\.json: data_end 2017-01-03 is after trained_at 2016-06-30",
        check=served_from_v1,
    ),
    registry_case("leftovers", leftovers, r"^$", check=leftovers_cleared),
    registry_case(
        "orphan-onnx-kept",
        orphan_kept,
        r"index\.json listed \[1, 2, 3\] but the folder holds versions \[1, 3\]",
        check=orphan_untouched,
    ),
    registry_case("keep-one-candidate", keep_one, r"^$", check=candidate_kept_and_served),
    registry_case(
        "linked-symbol-folder",
        linked_symbol,
        r"error: M/specific/AAPL › is a symbolic link; links inside the registry are refused",
        exit_code=2,
        damaged=("AAPL",),
        check=outside_untouched,
    ),
    registry_case(
        "linked-type-folder",
        linked_type_folder,
        r"error: M/specific › is a symbolic link",
        exit_code=2,
        damaged=("AAPL", "MSFT"),
    ),
    registry_case(
        "linked-lock",
        linked_lock,
        r"error: train › AAPL › .*AAPL/\.lock › is a symbolic link",
        exit_code=2,
        check=precious_untouched,
    ),
    registry_case(
        "stray-folder", stray("bad name", "folder"), r"skipping .*specific/bad name: not a valid symbol name"
    ),
    registry_case("stray-file", stray("ZZZ", "file"), r"^$"),
    registry_case(
        "snapshot-list",
        snapshot("[1, 2]"),
        r"service\.json is not a service snapshot \(a JSON list, not an object\)",
    ),
    registry_case(
        "snapshot-types",
        snapshot('{"counts": 3, "queue": 5}'),
        r"service\.json is not a service snapshot \(counts is not a JSON object\)",
    ),
    registry_case(
        "snapshot-counts",
        snapshot('{"counts": {"done": "many"}}'),
        r"service\.json is not a service snapshot \(counts are not numbers\)",
    ),
    registry_case("snapshot-garbage", snapshot("{nope"), r"service\.json is unreadable"),
    # ---- report folders and backtest arguments
    report_case("out-is-file", out_is_file, r"error: --out › out is a file, not a folder$"),
    Case(
        "report-checked-before-work",
        lstm_backtest_into_file,
        2,
        r"error: --out › out is a file",
        check=nothing_trained,
    ),
    report_case(
        "out-under-file", lambda f: out_is_file(f) + "/sub", r"error: --out › cannot write a report in .*out"
    ),
    report_case(
        "out-foreign-files",
        out_holds_foreign,
        r"error: --out › out holds notes\.txt, which is not part of a report",
        check=lambda proc, folder: (folder / "out" / "notes.txt").read_text() == "mine",
    ),
    report_case("out-is-link", out_is_link, r"error: --out › out is a symbolic link"),
    report_case(
        "link-as-summary",
        link_inside("summary.json"),
        r"error: --out › out holds summary\.json",
        check=precious_untouched,
    ),
    report_case(
        "planted-temp-link",
        link_inside(".summary.json.tmp"),
        r"error: --out › out holds \.summary\.json\.tmp",
        check=precious_untouched,
    ),
    report_case(
        "out-unwritable", lambda f: "/proc/lstm-report", r"error: --out › cannot write a report in /proc"
    ),
    Case(
        "backtest-empty-symbols",
        plain(["backtest", "--symbols", ",,,", "--no-lstm", "--out", "out"]),
        2,
        r"error: --symbols › an empty name in the list \(got: ',,,'\)",
    ),
    Case(
        "backtest-hole-in-symbols",
        plain(["backtest", "--symbols", "AAPL,,MSFT", "--no-lstm", "--out", "out"]),
        2,
        r"error: --symbols › an empty name",
    ),
    Case(
        "backtest-end-before-start",
        plain(["backtest", "--no-lstm", "--start", "2020-03-01", "--end", "2020-01-01", "--out", "out"]),
        2,
        r"error: --end › must be after --start",
    ),
    Case(
        "backtest-bad-date",
        plain(["backtest", "--no-lstm", "--start", "someday", "--out", "out"]),
        2,
        r"error: --start › must be a date",
    ),
    Case(
        "backtest-unknown-symbol",
        plain(["backtest", "--no-lstm", "--symbols", "AAPL,ZZZZ", "--out", "out"]),
        2,
        r"error: unknown symbol ZZZZ",
    ),
    Case(
        "backtest-twice",
        plain(["backtest", "--no-lstm", "--symbols", "AAPL,AAPL", "--out", "out"]),
        2,
        r"error: --symbols › listed twice: AAPL",
    ),
    # ---- symbols
    Case(
        "symbol-traversal",
        plain(["train", "../../etc", "--backend", "sync"]),
        2,
        r"error: symbol › must be 1-20 characters",
    ),
    Case("symbol-slash", plain(["predict", "a/b"]), 2, r"error: symbol › must be 1-20 characters"),
]


# ---------------------------------------------------------------------- running
@dataclass
class Outcome:
    folder: Path
    proc: subprocess.CompletedProcess | BaseException  # the exception when the case's setup failed
    before: dict[tuple[str, str], str]


def _run_case(case: Case, root: Path, models: Path) -> Outcome:
    try:
        return _run(case, root, models)
    except Exception as exc:
        return Outcome(root / case.name, exc, {})


def _run(case: Case, root: Path, models: Path) -> Outcome:
    folder = root / case.name
    folder.mkdir()
    shutil.copytree(models, folder / "M")
    (folder / "tiny.json").write_text(json.dumps(TINY))
    registry = ModelRegistry(folder / "M")
    before = {key: registry.resolve(*key).metadata["sha256"] for key in MODELS}
    args = case.prepare(folder)
    if "--models" not in args:
        args += ["--models", "M"]
    if "--config" not in args and args[0] in ("train", "predict", "status", "service", "backtest"):
        args += ["--config", "tiny.json"]
    proc = subprocess.run(
        [sys.executable, "-m", "lstm_plugin", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"},
    )
    return Outcome(folder, proc, before)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, trained) -> dict[str, Outcome]:
    root = tmp_path_factory.mktemp("hostile")
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {case.name: pool.submit(_run_case, case, root, trained["root"]) for case in CASES}
        return {name: future.result() for name, future in futures.items()}


def test_the_table_is_large_and_names_are_unique():
    assert len(CASES) >= 60
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_input(outcomes, case):
    outcome = outcomes[case.name]
    proc = outcome.proc
    if isinstance(proc, BaseException):
        raise proc
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == case.exit_code, proc.stderr
    if case.exit_code == 2:
        assert len(lines) == 1 and lines[0].startswith("lstm-plugin: error: "), proc.stderr
        assert re.search(case.message, lines[0]), lines[0]
    else:
        assert all(line.startswith("lstm-plugin: ") for line in lines), proc.stderr
        if case.message == r"^$":
            assert not lines, proc.stderr
        else:
            assert any(re.search(case.message, line) for line in lines), proc.stderr
    if case.check is not None:
        assert case.check(proc, outcome.folder) is not False
    registry = ModelRegistry(outcome.folder / "M")
    for key, digest in outcome.before.items():
        if key[1] in case.damaged:
            continue
        served = registry.resolve(*key, SERVED_AT)
        assert served is not None and served.version == 1 and served.metadata["sha256"] == digest, key
