"""Hostile input, run as a user would: real commands on broken CSV files, configs, registries and report folders.

Every case asserts three things: the exit status (2 for the user's mistake, 0 where a broken model
is skipped and an older one serves), the message that names the culprit (one ``error:`` line on
stderr and nothing else for exit 2; no traceback ever), and that the versions registered before the
command are all still there and still served. Add a row to ``CASES`` for every new way in.

The commands run as real processes, several at a time, once per module.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lstm_plugin import ModelRegistry

from .conftest import BUNDLED, TINY

#: Versions every case's registry starts with (the ``trained`` fixture): specific AAPL and MSFT, universal.
MODELS = (("specific", "AAPL"), ("specific", "MSFT"), ("universal", "DEFAULT"))
SERVED_AT = "2016-01-04"


def aapl_lines(rows: int | None = None) -> list[str]:
    lines = gzip.decompress((BUNDLED / "AAPL.csv.gz").read_bytes()).decode().splitlines(keepends=True)
    return lines if rows is None else lines[: rows + 1]


def cell(line: str, column: int, value: str) -> str:
    parts = line.rstrip("\n").split(",")
    parts[column] = value
    return ",".join(parts) + "\n"


# ---------------------------------------------------------------------- case builders
@dataclass
class Case:
    """``prepare(folder)`` writes the hostile input inside the case folder (its registry is ``M``)
    and returns the command's arguments."""

    name: str
    prepare: Callable[[Path], list[str]]
    exit_code: int
    message: str  # regex that must appear in stderr (the single error line when exit_code == 2)
    damaged: tuple[str, ...] = ()  # models (by name) the case breaks on purpose: not checked afterwards
    check: Callable[[subprocess.CompletedProcess, Path], None] | None = None
    extra: dict = field(default_factory=dict)


def predict_with_data(files: dict[str, list[str] | bytes]) -> Callable[[Path], list[str]]:
    def prepare(folder: Path) -> list[str]:
        data = folder / "data"
        data.mkdir()
        for name, content in files.items():
            (data / name).write_bytes(content if isinstance(content, bytes) else "".join(content).encode())
        return ["predict", "AAPL", "--as-of", SERVED_AT, "--data", "data", "--json"]
    return prepare


def csv_case(name: str, mutate: Callable[[list[str]], list[str]], message: str, rows: int = 300) -> Case:
    return Case(f"csv-{name}", predict_with_data({"AAPL.csv": mutate(aapl_lines(rows))}), 2, message)


def slashed(order: str) -> Callable[[list[str]], list[str]]:
    def mutate(lines: list[str]) -> list[str]:
        out = [lines[0]]
        for line in lines[1:]:
            y, m, d = line[:10].split("-")
            out.append((f"{d}/{m}/{y}" if order == "dmy" else f"{m}/{d}/{y}") + line[10:])
        return out
    return mutate


def first_days_only(lines: list[str]) -> list[str]:
    """Rows whose day of month is at most 12, written dd/mm/yyyy: no row says which is the day."""
    kept = [line for line in lines[1:] if int(line[8:10]) <= 12]
    return slashed("dmy")([lines[0], *kept])


def two_slash_orders(lines: list[str]) -> list[str]:
    dmy, mdy = slashed("dmy")(lines), slashed("mdy")(lines)
    return [lines[0], *dmy[1:150], *mdy[150:]]


def with_offsets(offsets: tuple[str, ...]) -> Callable[[list[str]], list[str]]:
    def mutate(lines: list[str]) -> list[str]:
        return [lines[0], *(f"{line[:10]}T16:00:00{offsets[i % len(offsets)]}{line[10:]}" for i, line in enumerate(lines[1:]))]
    return mutate


def config_case(name: str, payload: str | bytes | dict, message: str, command: str = "predict") -> Case:
    def prepare(folder: Path) -> list[str]:
        blob = payload if isinstance(payload, bytes) else (payload if isinstance(payload, str) else json.dumps(payload)).encode()
        (folder / "bad.json").write_bytes(blob)
        if command == "backtest":
            return ["backtest", "--no-lstm", "--symbols", "AAPL,MSFT", "--start", "2020-01-02", "--end", "2020-02-28", "--out", "out", "--config", "bad.json"]
        return ["predict", "AAPL", "--as-of", SERVED_AT, "--config", "bad.json"]
    return Case(f"config-{name}", prepare, 2, message)


def copy_as_newer(folder: Path, symbol: str = "AAPL", trained_at: str = "2016-06-30") -> Path:
    """Register v2 of ``symbol``: v1's model stamped later (harmless: it may only serve less). Returns v2's metadata path."""
    registry = ModelRegistry(folder / "M")
    first = registry.resolve("specific", symbol)
    metadata = dict(first.metadata, trained_at=f"{trained_at}T00:00:00")
    record = registry.publish("specific", symbol, first.read_bytes(), metadata)
    return record.onnx_path.with_suffix(".json")


def damage_newest(edit: Callable[[dict, Path], object]) -> Callable[[Path], list[str]]:
    """v2 of AAPL is registered and then damaged: the forecast after v2's date must come from v1."""
    def prepare(folder: Path) -> list[str]:
        meta_path = copy_as_newer(folder)
        metadata = json.loads(meta_path.read_text())
        replaced = edit(metadata, meta_path)
        if replaced is not None:
            meta_path.write_text(json.dumps(replaced))
        return ["predict", "AAPL", "MSFT", "--as-of", "2016-07-05", "--json"]
    return prepare


def served_from_v1(proc: subprocess.CompletedProcess, folder: Path) -> None:
    result = json.loads(proc.stdout)
    assert result["AAPL"]["status"] == "success" and result["AAPL"]["model_version"] == 1, result["AAPL"]
    assert result["MSFT"]["status"] == "success"


def rehash(meta_path: Path, metadata: dict) -> dict:
    """What a careful tamperer does: make the metadata's sha256 match the (replaced) ONNX file."""
    metadata["sha256"] = hashlib.sha256(meta_path.with_suffix(".onnx").read_bytes()).hexdigest()
    return metadata


def foreign_onnx(metadata: dict, meta_path: Path) -> dict:
    shutil.copy(meta_path.parents[1] / "MSFT" / "v000001.onnx", meta_path.with_suffix(".onnx"))
    return rehash(meta_path, metadata)


def odd_graph(input_name: str, shape: tuple[int, int]) -> Callable[[dict, Path], dict]:
    def edit(metadata: dict, meta_path: Path) -> dict:
        import onnx
        from onnx import TensorProto, helper

        x = helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", *shape])
        probabilities = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", shape[1]])
        expected = helper.make_tensor_value_info("expected_return", TensorProto.FLOAT, ["batch"])
        graph = helper.make_graph(
            [helper.make_node("ReduceMean", [input_name], ["probabilities"], axes=[1], keepdims=0),
             helper.make_node("ReduceMean", [input_name], ["expected_return"], axes=[1, 2], keepdims=0)],
            "odd", [x], [probabilities, expected],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        meta_path.with_suffix(".onnx").write_bytes(model.SerializeToString())
        onnx.checker.check_model(model)
        return rehash(meta_path, metadata)
    return edit


def registry_case(name: str, prepare: Callable[[Path], list[str]], message: str, exit_code: int = 0, **options) -> Case:
    return Case(f"registry-{name}", prepare, exit_code, message, **options)


def index_case(name: str, text: str, message: str) -> Case:
    def prepare(folder: Path) -> list[str]:
        (folder / "M" / "specific" / "AAPL" / "index.json").write_text(text)
        return ["predict", "AAPL", "--as-of", SERVED_AT, "--json"]
    return registry_case(name, prepare, message, check=lambda proc, folder: _v1_served(proc))


def _v1_served(proc: subprocess.CompletedProcess) -> None:
    result = json.loads(proc.stdout)
    assert result["AAPL"]["status"] == "success" and result["AAPL"]["model_version"] == 1


def train(symbol: str = "AAPL", *extra: str) -> list[str]:
    return ["train", symbol, "--as-of", "2016-06-30", "--backend", "sync", "-q", *extra]


def wiped_index(folder: Path) -> list[str]:
    (folder / "M" / "specific" / "AAPL" / "index.json").write_text('{"versions": []}')
    return train()


def both_versions_kept(proc: subprocess.CompletedProcess, folder: Path) -> None:
    versions = [r.version for r in ModelRegistry(folder / "M").records("specific", "AAPL")]
    assert versions == [2, 1]
    assert json.loads((folder / "M" / "specific" / "AAPL" / "index.json").read_text()) == {"versions": [1, 2]}


def leftovers(folder: Path) -> list[str]:
    aapl = folder / "M" / "specific" / "AAPL"
    (aapl / ".tmp-1234-v000002.onnx").write_bytes(b"half")
    (aapl / "v000002.onnx").write_bytes(b"a save killed before its metadata")
    return train()


def leftovers_cleared(proc: subprocess.CompletedProcess, folder: Path) -> None:
    names = sorted(p.name for p in (folder / "M" / "specific" / "AAPL").iterdir() if p.name != ".lock")
    assert names == ["index.json", "v000001.json", "v000001.onnx", "v000002.json", "v000002.onnx"]


def orphan_kept(folder: Path) -> list[str]:
    """An ONNX file without metadata *older* than a complete version is not provably a partial
    write (someone deleted its metadata): it is kept, and its number is never reused."""
    copy_as_newer(folder)  # v2
    copy_as_newer(folder, trained_at="2016-09-30")  # v3
    (folder / "M" / "specific" / "AAPL" / "v000002.json").rename(folder / "v2.json")  # v2 is now an ONNX without metadata
    return train()


def orphan_untouched(proc: subprocess.CompletedProcess, folder: Path) -> None:
    aapl = folder / "M" / "specific" / "AAPL"
    assert (aapl / "v000002.onnx").exists() and (aapl / "v000004.json").exists()


def keep_one(folder: Path) -> list[str]:
    config = json.loads(json.dumps(TINY))
    config["registry"] = {"keep_versions": 1}
    config["lstm_service"] = {"retraining": {"min_reliability_for_update": 0.99}}
    (folder / "keep1.json").write_text(json.dumps(config))
    return [*train("AAPL", "--json"), "--config", "keep1.json"]


def candidate_kept_and_served(proc: subprocess.CompletedProcess, folder: Path) -> None:
    assert json.loads(proc.stdout)["AAPL"]["status"] == "candidate"
    registry = ModelRegistry(folder / "M", keep_versions=1)
    assert registry.resolve("specific", "AAPL", "2016-07-01").version == 1
    assert registry.resolve("specific", "AAPL", "2016-07-01", candidates=True).version == 2


def linked_symbol(folder: Path) -> list[str]:
    outside = folder / "outside"
    shutil.move(folder / "M" / "specific" / "AAPL", outside)
    os.symlink(outside, folder / "M" / "specific" / "AAPL")
    return train()


def outside_untouched(proc: subprocess.CompletedProcess, folder: Path) -> None:
    assert sorted(p.name for p in (folder / "outside").iterdir() if p.name != ".lock") == ["index.json", "v000001.json", "v000001.onnx"]


def linked_type_folder(folder: Path) -> list[str]:
    shutil.move(folder / "M" / "specific", folder / "elsewhere")
    os.symlink(folder / "elsewhere", folder / "M" / "specific")
    return train("MSFT")


def linked_lock(folder: Path) -> list[str]:
    (folder / "precious.txt").write_text("precious")
    lock = folder / "M" / "specific" / "AAPL" / ".lock"
    lock.unlink(missing_ok=True)
    os.symlink(folder / "precious.txt", lock)
    return train()


def precious_untouched(proc: subprocess.CompletedProcess, folder: Path) -> None:
    assert (folder / "precious.txt").read_text() == "precious"


def stray(entry: str, kind: str) -> Callable[[Path], list[str]]:
    def prepare(folder: Path) -> list[str]:
        path = folder / "M" / "specific" / entry
        if kind == "folder":
            path.mkdir()
            (path / "index.json").write_text('{"versions": [1]}')
        else:
            path.write_text("not a folder")
        return ["status", "--as-of", SERVED_AT, "--json"]
    return prepare


def snapshot(text: str) -> Callable[[Path], list[str]]:
    def prepare(folder: Path) -> list[str]:
        (folder / "M" / "service.json").write_text(text)
        return ["service", "AAPL", "--as-of", SERVED_AT]
    return prepare


def backtest(out: str = "out", *extra: str) -> list[str]:
    return ["backtest", "--no-lstm", "--symbols", "AAPL,MSFT", "--start", "2020-01-02", "--end", "2020-02-28", "--out", out, "-q", *extra]


def report_case(name: str, setup: Callable[[Path], str], message: str, **options) -> Case:
    def prepare(folder: Path) -> list[str]:
        return backtest(setup(folder))
    return Case(f"report-{name}", prepare, 2, message, **options)


def out_is_file(folder: Path) -> str:
    (folder / "out").write_text("a file")
    return "out"


def out_holds_foreign(folder: Path) -> str:
    (folder / "out").mkdir()
    (folder / "out" / "notes.txt").write_text("mine")
    return "out"


def out_is_link(folder: Path) -> str:
    (folder / "real").mkdir()
    os.symlink(folder / "real", folder / "out")
    return "out"


def link_inside(name: str) -> Callable[[Path], str]:
    def setup(folder: Path) -> str:
        (folder / "precious.txt").write_text("precious")
        (folder / "out").mkdir()
        os.symlink(folder / "precious.txt", folder / "out" / name)
        return "out"
    return setup


def ten_rows_train(folder: Path) -> list[str]:
    """The default model (window 30) on a 10-row file: too little data, said as such."""
    (folder / "default.json").write_text("{}")
    predict_with_data({"AAPL.csv": aapl_lines(10)})(folder)
    return ["train", "AAPL", "--as-of", "2000-01-01", "--backend", "sync", "--config", "default.json", "--data", "data"]


def status_after_damage(folder: Path) -> list[str]:
    damage_newest(lambda m, p: dict(m, trained_at="yesterday-ish"))(folder)
    return ["status", "AAPL", "MSFT", "--as-of", "2016-07-05", "--json"]


def status_from_v1(proc: subprocess.CompletedProcess, folder: Path) -> None:
    result = json.loads(proc.stdout)
    assert result["AAPL"]["model_version"] == 1 and result["MSFT"]["model_version"] == 1


def lstm_backtest_into_file(folder: Path) -> list[str]:
    """The LSTM run would train models within seconds: none may be trained before --out is refused."""
    out_is_file(folder)
    return [arg for arg in backtest() if arg != "--no-lstm"]


def nothing_trained(proc: subprocess.CompletedProcess, folder: Path) -> None:
    registry = ModelRegistry(folder / "M")
    assert [[r.version for r in registry.records(*key)] for key in MODELS] == [[1], [1], [1]]


def plain(args: list[str]) -> Callable[[Path], list[str]]:
    return lambda folder: list(args)


CASES: list[Case] = [
    # ---- CSV files
    csv_case("ddmm-ambiguous", first_days_only, r"AAPL\.csv › line 2 › dates are ambiguous.*DD/MM/YYYY or MM/DD/YYYY"),
    csv_case("two-slash-orders", two_slash_orders, r"AAPL\.csv › line \d+ › dates mix DD/MM/YYYY"),
    csv_case("two-formats", lambda ls: [*ls[:50], *slashed("mdy")(ls)[50:]], r"AAPL\.csv › line 51 › date is written DD/MM/YYYY or MM/DD/YYYY but the file's dates are YYYY-MM-DD"),
    csv_case("impossible-date", lambda ls: [*ls[:9], cell(ls[9], 0, "2000-02-30"), *ls[10:]], r"AAPL\.csv › line 10 › date is not a date \(got: '2000-02-30'\)"),
    csv_case("word-as-date", lambda ls: [*ls[:9], cell(ls[9], 0, "soon"), *ls[10:]], r"AAPL\.csv › line 10 › date is not a date \(got: 'soon'\)"),
    csv_case("duplicate-date", lambda ls: [*ls[:9], ls[8], *ls[10:]], r"AAPL\.csv › line 10 \(1999-11-10\) › duplicate date"),
    csv_case("missing-open", lambda ls: [*ls[:9], cell(ls[9], 1, ""), *ls[10:]], r"AAPL\.csv › line 10 \(1999-11-11\) › open is missing"),
    csv_case("text-in-high", lambda ls: [*ls[:9], cell(ls[9], 2, "12;5"), *ls[10:]], r"line 10 \(1999-11-11\) › high is not a number \(got: '12;5'\)"),
    csv_case("negative-close", lambda ls: [*ls[:9], cell(ls[9], 4, "-3"), *ls[10:]], r"line 10 \(1999-11-11\) › prices must be positive"),
    csv_case("zero-low", lambda ls: [*ls[:9], cell(ls[9], 3, "0"), *ls[10:]], r"line 10 \(1999-11-11\) › prices must be positive"),
    csv_case("huge-volume", lambda ls: [*ls[:99], cell(ls[99], 6, "1e308"), *ls[100:]], r"line 100 \(2000-03-22\) › volume must be at most 1e\+15"),
    csv_case("huge-price", lambda ls: [*ls[:99], cell(cell(ls[99], 2, "1e308"), 5, "1e308"), *ls[100:]], r"line 100 \(2000-03-22\) › prices must be between 1e-08 and 1e\+09"),
    csv_case("tiny-tick", lambda ls: [*ls[:99], cell(ls[99], 3, "1e-300"), *ls[100:]], r"line 100 \(2000-03-22\) › prices must be between"),
    csv_case("close-above-high", lambda ls: [*ls[:99], cell(ls[99], 4, "999"), *ls[100:]], r"line 100 \(2000-03-22\) › close must be between low and high"),
    csv_case("open-below-low", lambda ls: [*ls[:99], cell(ls[99], 1, "1"), *ls[100:]], r"line 100 \(2000-03-22\) › open must be between low and high"),
    csv_case("low-above-high", lambda ls: [*ls[:99], cell(ls[99], 3, "999"), *ls[100:]], r"line 100 \(2000-03-22\) › low must not exceed high"),
    csv_case("negative-volume", lambda ls: [*ls[:99], cell(ls[99], 6, "-1"), *ls[100:]], r"line 100 \(2000-03-22\) › volume must not be negative"),
    csv_case("infinite-open", lambda ls: [*ls[:99], cell(ls[99], 1, "inf"), *ls[100:]], r"line 100 \(2000-03-22\) › values must be finite"),
    csv_case("adj-close-unit", lambda ls: [*ls[:99], cell(ls[99], 5, "1e-5"), *ls[100:]], r"line 100 \(2000-03-22\) › Adj Close / Close must be between"),
    csv_case("no-close-column", lambda ls: [line.rsplit(",", 3)[0] + "," + line.rsplit(",", 1)[1] for line in ls], r"missing columns: close"),
    csv_case("header-only", lambda ls: ls[:1], r"AAPL\.csv › no rows of data"),
    csv_case("empty-file", lambda ls: [], r"AAPL\.csv › empty file"),
    csv_case("ragged-row", lambda ls: [*ls[:9], ls[9].rstrip("\n") + ",1,2,3\n", *ls[10:]], r"AAPL\.csv › cannot parse CSV"),
    Case("csv-binary", predict_with_data({"AAPL.csv": os.urandom(3000)}), 2, r"AAPL\.csv › (cannot parse CSV|missing columns|empty file)"),
    Case("csv-truncated-gzip", predict_with_data({"AAPL.csv.gz": gzip.compress("".join(aapl_lines(400)).encode())[:900]}), 2, r"AAPL\.csv\.gz › cannot parse CSV"),
    Case("csv-csv-and-gz", predict_with_data({"AAPL.csv": aapl_lines(300), "AAPL.csv.gz": gzip.compress("".join(aapl_lines(200)).encode())}), 2, r"AAPL\.csv and AAPL\.csv\.gz both hold symbol AAPL; keep one"),
    Case("csv-two-cases", predict_with_data({"AAPL.csv": aapl_lines(300), "aapl.csv": aapl_lines(200)}), 2, r"AAPL\.csv and aapl\.csv both hold symbol AAPL; keep one"),
    Case("csv-unknown-symbol", lambda f: ["predict", "ZZZ", *predict_with_data({"AAPL.csv": aapl_lines(300)})(f)[2:]], 2, r"unknown symbol ZZZ in data"),
    Case("csv-missing-folder", plain(["predict", "AAPL", "--data", "nowhere"]), 2, r"nowhere › data folder not found"),
    Case("csv-ten-rows-train", ten_rows_train, 2, r"error: train › AAPL › .*insufficient data › need at least 300 labelled windows \(got: 0\)"),
    Case("csv-ddmm-whole-file", predict_with_data({"AAPL.csv": slashed("dmy")(aapl_lines())}), 0, r"^$",
         check=lambda proc, folder: _success_json(proc)),
    Case("csv-mixed-offsets", predict_with_data({"AAPL.csv": with_offsets(("-05:00", "-04:00", "+09:00", "Z"))(aapl_lines())}), 0, r"^$",
         check=lambda proc, folder: _success_json(proc)),
    # ---- config files
    config_case("nan-cash", '{"backtest": {"cash": NaN}}', r"bad\.json › backtest\.cash › must be a finite number \(got: NaN\)$"),
    config_case("nan-dollar-volume", '{"portfolio": {"min_dollar_volume": NaN}}', r"portfolio\.min_dollar_volume › must be a finite number"),
    config_case("inf-candidates", '{"portfolio": {"candidate_multiple": Infinity}}', r"portfolio\.candidate_multiple › must be a finite number \(got: Infinity\)"),
    config_case("nan-weight-decay", '{"model": {"weight_decay": NaN}}', r"model\.weight_decay › must be a finite number"),
    config_case("inf-backoff", '{"lstm_service": {"retry_backoff_seconds": -Infinity}}', r"lstm_service\.retry_backoff_seconds › must be a finite number"),
    config_case("huge-interval", '{"lstm": {"training_interval": 1e400}}', r"lstm\.training_interval › must be an integer \(got: Infinity\)"),
    config_case("huge-ttl", {"lstm": {"prediction_cache_ttl": 10**30}}, r"lstm\.prediction_cache_ttl › must be between 0 and 31622400"),
    config_case("huge-candidates", {"portfolio": {"candidate_multiple": 1e300}}, r"portfolio\.candidate_multiple › must be between 1 and 100"),
    config_case("deep-nesting", '{"a":' * 100_000 + "1" + "}" * 100_000, r"bad\.json › \(top level\) › nested too deeply"),
    config_case("typo", {"lstm": {"wieght": 0.3}}, r"lstm\.wieght › unknown key \(did you mean 'weight'\?\)"),
    config_case("weight", {"lstm": {"weight": 1.7}}, r"^lstm-plugin: error: bad\.json › lstm\.weight › must be between 0 and 1 \(got: 1\.7\)$"),
    config_case("syntax", '{"lstm": {"weight": 0.3,}}', r"bad\.json › line 1, column \d+ › invalid JSON"),
    config_case("top-level-list", "[1, 2]", r"bad\.json › \(top level\) › must be a JSON object"),
    config_case("bad-symbol", {"data": {"symbols": ["AAPL", "../etc"]}}, r"data\.symbols\.1 › must be 1-20 characters"),
    config_case("rebalance-zero", {"backtest": {"rebalance": 0}}, r"backtest\.rebalance › must be 'monthly', 'weekly' or a number of bars", command="backtest"),
    config_case("not-utf8", b'{"lstm": {"weight": 0.3}}\xff\xfe', r"bad\.json › cannot read config"),
    Case("config-missing", plain(["predict", "AAPL", "--config", "nope.json"]), 2, r"nope\.json › cannot read config › file not found"),
    Case("config-folder", lambda f: (f / "cfg").mkdir() or ["predict", "AAPL", "--config", "cfg"], 2, r"cfg › cannot read config"),
    # ---- registry
    registry_case("wiped-index", wiped_index, r"index\.json listed \[\] but the folder holds versions \[1\]; rebuilt the index", check=both_versions_kept),
    index_case("index-overflow", '{"versions": [1e400]}', r"index\.json does not list version numbers"),
    index_case("index-garbage", "garbage", r"index\.json is unreadable"),
    index_case("index-list", "[1, 2]", r"index\.json does not list version numbers"),
    index_case("index-strings", '{"versions": ["one"]}', r"index\.json does not list version numbers"),
    index_case("index-missing-version", '{"versions": [1, 7]}', r"v000007\.json: index\.json lists it but the metadata file is missing"),
    registry_case("bad-trained-at", damage_newest(lambda m, p: dict(m, trained_at="yesterday-ish")), r"v000002\.json: trained_at is not a date", check=served_from_v1),
    registry_case("bad-trained-at-status", status_after_damage, r"v000002\.json: trained_at is not a date", check=status_from_v1),
    registry_case("bad-version", damage_newest(lambda m, p: dict(m, version="two")), r"v000002\.json: metadata says version 'two'", check=served_from_v1),
    registry_case("bad-window", damage_newest(lambda m, p: dict(m, window="ten")), r"v000002\.json: window and horizon must be integers", check=served_from_v1),
    registry_case("bad-metrics", damage_newest(lambda m, p: dict(m, metrics=[1, 2])), r"v000002\.json: metrics must be an object", check=served_from_v1),
    registry_case("metadata-string", damage_newest(lambda m, p: "just a string"), r"v000002\.json: metadata is not a JSON object", check=served_from_v1),
    registry_case("metadata-symbol", damage_newest(lambda m, p: dict(m, symbol="MSFT")), r"v000002\.json: metadata is for symbol 'MSFT', not AAPL", check=served_from_v1),
    registry_case("onnx-path-outside", damage_newest(lambda m, p: dict(m, onnx_file="../MSFT/v000001.onnx")), r"onnx_file must be v000002\.onnx", check=served_from_v1),
    registry_case("onnx-is-folder", damage_newest(lambda m, p: (p.with_suffix(".onnx").unlink(), p.with_suffix(".onnx").mkdir()) and None), r"v000002\.onnx: not a regular file", check=served_from_v1),
    registry_case("onnx-truncated", damage_newest(lambda m, p: p.with_suffix(".onnx").write_bytes(p.with_suffix(".onnx").read_bytes()[:500]) and None), r"v000002\.onnx: sha256 mismatch", check=served_from_v1),
    registry_case("onnx-garbage-rehashed", damage_newest(lambda m, p: (p.with_suffix(".onnx").write_bytes(b"\x08\x07garbage" * 50), rehash(p, m))[1]), r"v000002\.onnx: not a readable ONNX model", check=served_from_v1),
    registry_case("onnx-other-symbol", damage_newest(foreign_onnx), r"v000002\.onnx: the ONNX file was exported for symbol 'MSFT', not 'AAPL'", check=served_from_v1),
    registry_case("onnx-wrong-shape", damage_newest(odd_graph("features", (12, 4))), r"v000002\.onnx: the graph's input has shape \(None, 12, 4\)", check=served_from_v1),
    registry_case("onnx-wrong-input", damage_newest(odd_graph("x", (10, 10))), r"v000002\.onnx: the graph has no input named 'features'", check=served_from_v1),
    registry_case("trained-at-earlier", damage_newest(lambda m, p: dict(m, trained_at="2015-06-30T00:00:00")), r"v000002\.json: data_end 2015-12-31 is after trained_at 2015-06-30", check=served_from_v1),
    registry_case("trained-at-and-ends-earlier", damage_newest(lambda m, p: dict(m, trained_at="2015-06-30T00:00:00", data_end="2015-06-30T00:00:00", train_end="2015-06-01T00:00:00")),
                  r"v000002\.onnx: trained_at 2015-06-30T00:00:00 is earlier than the 2015-12-31T00:00:00 the model was exported with", check=served_from_v1),
    registry_case("data-end-after", damage_newest(lambda m, p: dict(m, data_end="2017-01-03T00:00:00")), r"v000002\.json: data_end 2017-01-03 is after trained_at 2016-06-30", check=served_from_v1),
    registry_case("leftovers", leftovers, r"^$", check=leftovers_cleared),
    registry_case("orphan-onnx-kept", orphan_kept, r"index\.json listed \[1, 2, 3\] but the folder holds versions \[1, 3\]", check=orphan_untouched),
    registry_case("keep-one-candidate", keep_one, r"^$", check=candidate_kept_and_served),
    registry_case("linked-symbol-folder", linked_symbol, r"error: M/specific/AAPL › is a symbolic link; links inside the registry are refused", exit_code=2, damaged=("AAPL",), check=outside_untouched),
    registry_case("linked-type-folder", linked_type_folder, r"error: M/specific › is a symbolic link", exit_code=2, damaged=("AAPL", "MSFT")),
    registry_case("linked-lock", linked_lock, r"error: train › AAPL › .*AAPL/\.lock › is a symbolic link", exit_code=2, check=precious_untouched),
    registry_case("stray-folder", stray("bad name", "folder"), r"skipping .*specific/bad name: not a valid symbol name"),
    registry_case("stray-file", stray("ZZZ", "file"), r"^$"),
    registry_case("snapshot-list", snapshot("[1, 2]"), r"service\.json is not a service snapshot \(a JSON list, not an object\)"),
    registry_case("snapshot-types", snapshot('{"counts": 3, "queue": 5}'), r"service\.json is not a service snapshot \(counts is not a JSON object\)"),
    registry_case("snapshot-counts", snapshot('{"counts": {"done": "many"}}'), r"service\.json is not a service snapshot \(counts are not numbers\)"),
    registry_case("snapshot-garbage", snapshot("{nope"), r"service\.json is unreadable"),
    # ---- report folders and backtest arguments
    report_case("out-is-file", out_is_file, r"error: --out › out is a file, not a folder$"),
    Case("report-checked-before-work", lstm_backtest_into_file, 2, r"error: --out › out is a file", check=nothing_trained),
    report_case("out-under-file", lambda f: out_is_file(f) + "/sub", r"error: --out › cannot write a report in .*out"),
    report_case("out-foreign-files", out_holds_foreign, r"error: --out › out holds notes\.txt, which is not part of a report",
                check=lambda proc, folder: (folder / "out" / "notes.txt").read_text() == "mine"),
    report_case("out-is-link", out_is_link, r"error: --out › out is a symbolic link"),
    report_case("link-as-summary", link_inside("summary.json"), r"error: --out › out holds summary\.json", check=precious_untouched),
    report_case("planted-temp-link", link_inside(".summary.json.tmp"), r"error: --out › out holds \.summary\.json\.tmp", check=precious_untouched),
    report_case("out-unwritable", lambda f: "/proc/lstm-report", r"error: --out › cannot write a report in /proc"),
    Case("backtest-empty-symbols", plain(["backtest", "--symbols", ",,,", "--no-lstm", "--out", "out"]), 2, r"error: --symbols › an empty name in the list \(got: ',,,'\)"),
    Case("backtest-hole-in-symbols", plain(["backtest", "--symbols", "AAPL,,MSFT", "--no-lstm", "--out", "out"]), 2, r"error: --symbols › an empty name"),
    Case("backtest-end-before-start", plain(["backtest", "--no-lstm", "--start", "2020-03-01", "--end", "2020-01-01", "--out", "out"]), 2, r"error: --end › must be after --start"),
    Case("backtest-bad-date", plain(["backtest", "--no-lstm", "--start", "someday", "--out", "out"]), 2, r"error: --start › must be a date"),
    Case("backtest-unknown-symbol", plain(["backtest", "--no-lstm", "--symbols", "AAPL,ZZZZ", "--out", "out"]), 2, r"error: unknown symbol ZZZZ"),
    Case("backtest-twice", plain(["backtest", "--no-lstm", "--symbols", "AAPL,AAPL", "--out", "out"]), 2, r"error: --symbols › listed twice: AAPL"),
    # ---- symbols
    Case("symbol-traversal", plain(["train", "../../etc", "--backend", "sync"]), 2, r"error: symbol › must be 1-20 characters"),
    Case("symbol-slash", plain(["predict", "a/b"]), 2, r"error: symbol › must be 1-20 characters"),
]


def _success_json(proc: subprocess.CompletedProcess) -> None:
    result = json.loads(proc.stdout)
    assert result["AAPL"]["status"] == "success", result


# ---------------------------------------------------------------------- running
@dataclass
class Outcome:
    folder: Path
    proc: subprocess.CompletedProcess | BaseException  # the exception when the case's setup failed
    before: dict[tuple[str, str], str]


def _run_case(case: Case, root: Path, models: Path) -> Outcome:
    try:
        return _run(case, root, models)
    except Exception as exc:  # noqa: BLE001 - reported by the case's own test
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
        [sys.executable, "-m", "lstm_plugin", *args], cwd=folder, capture_output=True, text=True, timeout=240,
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
