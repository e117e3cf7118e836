"""The builders of the hostile-input table (``tests/test_hostile.py``): each writes one broken input
into a case folder and returns the command to run; the checks look at what the command left."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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
        return [
            lines[0],
            *(
                f"{line[:10]}T16:00:00{offsets[i % len(offsets)]}{line[10:]}"
                for i, line in enumerate(lines[1:])
            ),
        ]

    return mutate


def config_case(name: str, payload: str | bytes | dict, message: str, command: str = "predict") -> Case:
    def prepare(folder: Path) -> list[str]:
        blob = (
            payload
            if isinstance(payload, bytes)
            else (payload if isinstance(payload, str) else json.dumps(payload)).encode()
        )
        (folder / "bad.json").write_bytes(blob)
        if command == "backtest":
            return [
                "backtest",
                "--no-lstm",
                "--symbols",
                "AAPL,MSFT",
                "--start",
                "2020-01-02",
                "--end",
                "2020-02-28",
                "--out",
                "out",
                "--config",
                "bad.json",
            ]
        return ["predict", "AAPL", "--as-of", SERVED_AT, "--config", "bad.json"]

    return Case(f"config-{name}", prepare, 2, message)


def copy_as_newer(folder: Path, symbol: str = "AAPL", trained_at: str = "2016-06-30") -> Path:
    """Register v2 of ``symbol``: v1's model stamped later (harmless: it may only serve less). Returns v2's
    metadata path."""
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


def aapl_from_v1(proc: subprocess.CompletedProcess, folder: Path) -> None:
    result = json.loads(proc.stdout)
    assert result["AAPL"]["status"] == "success" and result["AAPL"]["model_version"] == 1, result["AAPL"]


def served_from_v1(proc: subprocess.CompletedProcess, folder: Path) -> None:
    """The broken newest version is skipped for AAPL only: v1 answers, and MSFT is not affected."""
    aapl_from_v1(proc, folder)
    assert json.loads(proc.stdout)["MSFT"]["status"] == "success"


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
            [
                helper.make_node("ReduceMean", [input_name], ["probabilities"], axes=[1], keepdims=0),
                helper.make_node("ReduceMean", [input_name], ["expected_return"], axes=[1, 2], keepdims=0),
            ],
            "odd",
            [x],
            [probabilities, expected],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        meta_path.with_suffix(".onnx").write_bytes(model.SerializeToString())
        onnx.checker.check_model(model)
        return rehash(meta_path, metadata)

    return edit


def registry_case(
    name: str, prepare: Callable[[Path], list[str]], message: str, exit_code: int = 0, **options
) -> Case:
    return Case(f"registry-{name}", prepare, exit_code, message, **options)


def index_case(name: str, text: str, message: str) -> Case:
    def prepare(folder: Path) -> list[str]:
        (folder / "M" / "specific" / "AAPL" / "index.json").write_text(text)
        return ["predict", "AAPL", "--as-of", SERVED_AT, "--json"]

    return registry_case(name, prepare, message, check=aapl_from_v1)


def train(symbol: str = "AAPL", *extra: str) -> list[str]:
    return ["train", symbol, "--as-of", "2016-06-30", "--backend", "sync", "-q", *extra]


def index_listing(versions: list[int]) -> Callable[[Path], list[str]]:
    """An index that lists versions no file holds, then a training: the next version follows the files."""

    def prepare(folder: Path) -> list[str]:
        (folder / "M" / "specific" / "AAPL" / "index.json").write_text(json.dumps({"versions": versions}))
        return train()

    return prepare


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
    (folder / "M" / "specific" / "AAPL" / "v000002.json").rename(
        folder / "v2.json"
    )  # v2 is now an ONNX without metadata
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
    assert sorted(p.name for p in (folder / "outside").iterdir() if p.name != ".lock") == [
        "index.json",
        "v000001.json",
        "v000001.onnx",
    ]


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
