"""The hostile-input table, part two: registries, report folders, symbols (``tests/test_hostile.py``)."""

from __future__ import annotations

from .crafted_models import (
    crafted,
    double_input,
    external_constant,
    external_weights,
    fails_at_run,
    nan_head_bias,
    unknown_operator,
)
from .hostile_builders import (
    Case,
    both_versions_kept,
    candidate_kept_and_served,
    damage_newest,
    foreign_onnx,
    index_case,
    index_listing,
    keep_one,
    leftovers,
    leftovers_cleared,
    linked_lock,
    linked_symbol,
    linked_type_folder,
    odd_graph,
    orphan_kept,
    orphan_untouched,
    outside_untouched,
    precious_untouched,
    registry_case,
    rehash,
    served_from_v1,
    snapshot,
    stray,
    wiped_index,
)
from .hostile_report_builders import (
    link_inside,
    lstm_backtest_into_file,
    nothing_trained,
    out_holds_foreign,
    out_is_file,
    out_is_link,
    plain,
    report_case,
    status_after_damage,
    status_from_v1,
)

REGISTRY_CASES: list[Case] = [
    # ---- registry
    registry_case(
        "wiped-index",
        wiped_index,
        r"index\.json listed \[\] but the folder holds versions \[1\]; rebuilt the index",
        check=both_versions_kept,
    ),
    registry_case(
        "index-lists-999999",
        index_listing([1, 999_999]),
        r"index\.json listed \[1, 999999\] but the folder holds versions \[1\]; rebuilt the index",
        check=both_versions_kept,
    ),
    registry_case(
        "index-lists-100000",
        index_listing(list(range(1, 100_001))),
        r"index\.json listed \[1, 2, 3, 4, …, 99997, 99998, 99999, 100000\] \(100000 in all\) but the folder "
        r"holds versions \[1\]",
        check=both_versions_kept,
    ),
    index_case("index-overflow", '{"versions": [1e400]}', r"index\.json does not list version numbers"),
    index_case("index-garbage", "garbage", r"index\.json is unreadable"),
    index_case("index-list", "[1, 2]", r"index\.json does not list version numbers"),
    index_case("index-strings", '{"versions": ["one"]}', r"index\.json does not list version numbers"),
    index_case(
        "index-missing-version",
        '{"versions": [1, 7]}',
        r"AAPL: index\.json lists versions \[7\] whose metadata files are missing; skipped",
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
    # ---- versions written by an attacker, sha256 matching: refused before onnxruntime reads them, or set
    # aside when it cannot serve them; v1 answers either way
    registry_case(
        "onnx-external-data-in-cwd",
        damage_newest(crafted(external_weights("outside.bin"))),
        r"v000002\.onnx: the graph reads forecaster\.feature_mean \('outside\.bin'\) from a file outside "
        r"the model",
        check=served_from_v1,
    ),
    registry_case(
        "onnx-external-data-escaping",
        damage_newest(crafted(external_weights("../../etc/passwd"))),
        r"v000002\.onnx: the graph reads forecaster\.feature_mean \('\.\./\.\./etc/passwd'\) from a file",
        check=served_from_v1,
    ),
    registry_case(
        "onnx-external-constant-in-subgraph",
        damage_newest(crafted(external_constant)),
        r"v000002\.onnx: the graph reads hidden \('outside\.bin'\) from a file outside the model",
        check=served_from_v1,
    ),
    registry_case(
        "onnx-double-input",
        damage_newest(crafted(double_input)),
        r"v000002\.onnx: the graph's input 'features' is float64, not the float32 features",
        check=served_from_v1,
    ),
    registry_case(
        "onnx-nan-weights",
        damage_newest(crafted(nan_head_bias)),
        r"v000002\.onnx: its output is not finite \(NaN or infinity\)",
        check=served_from_v1,
    ),
    registry_case(
        "onnx-unknown-operator",
        damage_newest(crafted(unknown_operator)),
        r"v000002\.onnx: onnxruntime cannot load it \(.*NoSuchOperator",
        check=served_from_v1,
    ),
    registry_case(
        "onnx-fails-at-run",
        damage_newest(crafted(fails_at_run)),
        r"v000002\.onnx: onnxruntime cannot run it \(",
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
