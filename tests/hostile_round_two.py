"""The hostile-input table, part three: the second hostile trial (issue 25) — where a model folder, a config
or a data file is not what it should be (run by ``tests/test_hostile.py``)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from .hostile_builders import (
    SERVED_AT,
    Case,
    aapl_lines,
    cell,
    csv_case,
    damage_newest,
    predict_with_data,
    train,
)


def models_at(
    path: str, command: str = "predict", make: Callable[[Path], object] | None = None
) -> Callable[[Path], list[str]]:
    """``command`` with ``--models path``; ``make(folder)`` creates what the path names first."""

    def prepare(folder: Path) -> list[str]:
        if make is not None:
            make(folder)
        if command == "train":
            return [*train(), "--models", path]
        return [command, "AAPL", "--as-of", SERVED_AT, "--models", path]

    return prepare


def plain_args(args: list[str]) -> Callable[[Path], list[str]]:
    return lambda folder: list(args)


def config_at(path: str, make: Callable[[Path], object] | None = None) -> Callable[[Path], list[str]]:
    def prepare(folder: Path) -> list[str]:
        if make is not None:
            make(folder)
        return ["predict", "AAPL", "--as-of", SERVED_AT, "--config", path, "--json"]

    return prepare


def sparse_onnx(metadata: dict, meta_path: Path) -> None:
    """v2's ONNX file replaced by a 2 GiB sparse file (no disk used): refused by its size, never read."""
    with open(meta_path.with_suffix(".onnx"), "wb") as stream:
        stream.truncate(2 << 30)


def with_bom(folder: Path) -> None:
    (folder / "bom.json").write_bytes(b"\xef\xbb\xbf" + json.dumps({"lstm": {"weight": 0.2}}).encode())


def config_success(proc: subprocess.CompletedProcess, folder: Path) -> None:
    assert json.loads(proc.stdout)["AAPL"]["status"] == "success"


def gzip_bomb(folder: Path) -> list[str]:
    """A 600 KB ``AAPL.csv.gz`` that expands to 600 MB of zero bytes (the trial's held 3 GB)."""
    import gzip

    (folder / "data").mkdir()
    with gzip.open(folder / "data" / "AAPL.csv.gz", "wb", compresslevel=9) as stream:
        stream.write(b"Date,Open,High,Low,Close,Volume\n")
        for _ in range(600):
            stream.write(b"\0" * (1 << 20))
    return ["predict", "AAPL", "--as-of", SERVED_AT, "--data", "data"]


def behind(proc: subprocess.CompletedProcess, folder: Path) -> None:
    answer = json.loads(proc.stdout)["AAPL"]
    assert answer["as_of"] == "2021-04-21T00:00:00" and answer["requested_as_of"] == "2030-01-01T00:00:00"
    assert answer["data_behind_days"] == 3177


def short_line(proc: subprocess.CompletedProcess, folder: Path) -> None:
    line = proc.stderr.strip()
    assert len(line) < 250 and "\\x00" in line and "\x00" not in line, line


ROUND_TWO_CASES: list[Case] = [
    # ---- row 8: an as-of past the data's end is said, and a field says how far
    Case(
        "predict-past-the-data",
        plain_args(["predict", "AAPL", "--as-of", "2030-01-01", "--json"]),
        0,
        r"WARNING: the data of AAPL ends on 2021-04-21, 3177 days before 2030-01-01: those forecasts are as "
        r"of their last bar",
        check=behind,
    ),
    # ---- row 23: a data file may expand to data.max_file_mb, no further
    Case("csv-gzip-bomb", gzip_bomb, 2, r"AAPL\.csv\.gz › holds more than 256 MiB of text once decompressed"),
    # ---- row 29: dates pandas cannot hold, and implausible ones
    csv_case(
        "date-2300",
        lambda ls: [*ls[:9], cell(ls[9], 0, "2300-01-02"), *ls[10:]],
        r"AAPL\.csv › line 10 › date is outside 1800-01-01 \.\. 2199-12-31 \(got: '2300-01-02'\)",
    ),
    csv_case(
        "date-1500",
        lambda ls: [*ls[:9], cell(ls[9], 0, "1500-01-02"), *ls[10:]],
        r"AAPL\.csv › line 10 › date is outside 1800-01-01 \.\. 2199-12-31 \(got: '1500-01-02'\)",
    ),
    # ---- a cell of NUL bytes is shown escaped and cut short
    Case(
        "csv-nul-bytes",
        predict_with_data(
            {
                "AAPL.csv": [
                    *aapl_lines(300)[:9],
                    cell(aapl_lines(300)[9], 4, "\0" * 100),
                    *aapl_lines(300)[10:],
                ]
            }
        ),
        2,
        r"AAPL\.csv › line 10 \(1999-11-11\) › close is not a number \(got: '(\\x00)+\.\.\.'\)",
        check=short_line,
    ),
    # ---- row 21: --models that is not a folder, refused at once
    Case(
        "models-file",
        models_at("afile", make=lambda f: (f / "afile").write_text("x")),
        2,
        r"--models › afile is a file, not a folder of models",
    ),
    Case("models-dev-null", models_at("/dev/null", "status"), 2, r"--models › /dev/null is a device"),
    Case(
        "models-fifo-train",
        models_at("fifo", "train", make=lambda f: os.mkfifo(f / "fifo")),
        2,
        r"--models › fifo is a FIFO, not a folder of models",
    ),
    Case(
        "models-under-a-file",
        models_at("afile/M", "train", make=lambda f: (f / "afile").write_text("x")),
        2,
        r"--models › afile/M: Not a directory",
    ),
    # ---- rows 32 and 34, and the config smaller rows: regular files only, capped, BOM accepted
    Case(
        "config-dev-zero", config_at("/dev/zero"), 2, r"/dev/zero › cannot read config › not a regular file"
    ),
    Case(
        "config-dev-null", config_at("/dev/null"), 2, r"/dev/null › cannot read config › not a regular file"
    ),
    Case(
        "config-fifo-without-writer",
        config_at("fifo", make=lambda f: os.mkfifo(f / "fifo")),
        2,
        r"fifo › cannot read config › not a regular file",
    ),
    Case(
        "config-too-large",
        config_at("big.json", make=lambda f: (f / "big.json").write_text("{" + " " * (2 << 20) + "}")),
        2,
        r"big\.json › cannot read config › larger than 1 MiB",
    ),
    Case("config-with-bom", config_at("bom.json", make=with_bom), 0, r"^$", check=config_success),
    Case(
        "config-duplicate-symbol",
        config_at(
            "dup.json",
            make=lambda f: (f / "dup.json").write_text(
                json.dumps({"data": {"symbols": ["AAPL", "KO", "AAPL"]}})
            ),
        ),
        2,
        r"dup\.json › data\.symbols › lists AAPL more than once",
    ),
    # ---- a 2 GiB model file is refused by its size before it is read
    Case(
        "registry-onnx-2gib-sparse",
        damage_newest(sparse_onnx),
        0,
        r"v000002\.onnx: 2\.0 GiB, over the 1 GiB a version may be",
        check=lambda proc, folder: json.loads(proc.stdout)["AAPL"]["model_version"] == 1,
    ),
]
