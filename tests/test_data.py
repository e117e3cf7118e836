"""Data: the bundled set, split/dividend adjustment, folders and DataFrames, and every bad input."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstm_plugin import (
    CSVFolderSource,
    DataError,
    FrameSource,
    SymbolError,
    validate_symbol,
)
from lstm_plugin.core.data import BUNDLED_END, clean_ohlcv, frame_fingerprint, read_ohlcv_csv
from lstm_plugin.core.dates import parse_dates

BUNDLED = Path(__file__).resolve().parents[1] / "lstm_plugin" / "datasets" / "us_daily"
HEADER = "Date,Open,High,Low,Close,Adj Close,Volume\n"


def raw_lines(symbol: str = "AAPL", rows: int = 100) -> list[str]:
    text = gzip.decompress((BUNDLED / f"{symbol}.csv.gz").read_bytes()).decode()
    return text.splitlines(keepends=True)[: rows + 1]


def write_csv(folder: Path, name: str, lines: list[str] | str) -> Path:
    path = folder / name
    path.write_text(lines if isinstance(lines, str) else "".join(lines))
    return path


def test_bundled_set_has_real_data_and_attribution(source):
    assert len(source.symbols()) >= 20
    attribution = (BUNDLED / "ATTRIBUTION.txt").read_text()
    assert "price data: Alpha Vantage via Pooksoft/PooksoftSP500EquityPriceDataSet, MIT" in attribution
    aapl = source.load("AAPL")
    assert aapl.index[0] == pd.Timestamp("1999-11-01") and aapl.index[-1] == pd.Timestamp("2021-04-21")
    assert list(aapl.columns) == ["open", "high", "low", "close", "volume"]
    assert len(aapl) == 5402


def test_split_is_adjusted_away(source):
    aapl = source.load("AAPL")
    # raw close 101.25 -> 55.63 across the 2000-06-21 2:1 split; adjusted it is an ordinary day
    move = aapl.loc["2000-06-21", "close"] / aapl.loc["2000-06-20", "close"] - 1
    assert abs(move) < 0.1
    raw = read_ohlcv_csv(BUNDLED / "AAPL.csv.gz")
    assert (raw["high"] >= raw["low"]).all()
    # adjusted close equals Adj Close; open/high/low carry the same factor; volume the inverse
    first = raw_lines("AAPL", 1)[1].strip().split(",")
    factor = float(first[5]) / float(first[4])
    assert raw["close"].iloc[0] == pytest.approx(float(first[5]))
    assert raw["open"].iloc[0] == pytest.approx(float(first[1]) * factor)
    assert raw["volume"].iloc[0] == pytest.approx(float(first[6]) / factor)


def test_end_slices_without_looking_ahead(source):
    frame = source.load("MSFT", end="2010-01-15")
    assert frame.index[-1] <= pd.Timestamp("2010-01-15")


def test_folder_without_adj_close_and_lower_case_names(tmp_path):
    lines = [line.rsplit(",", 2)[0] + "," + line.rsplit(",", 1)[1] for line in raw_lines()]
    lines[0] = "Date,Open,High,Low,Close,Volume\n"
    write_csv(tmp_path, "zz.csv", lines)
    source = CSVFolderSource(tmp_path)
    assert source.symbols() == ["ZZ"]
    frame = source.load("zz")
    assert frame["close"].iloc[0] == pytest.approx(77.62)  # raw close kept when no Adj Close


def test_dataframe_sources_with_column_or_index():
    frame = read_ohlcv_csv(BUNDLED / "KO.csv.gz").iloc[:80]
    by_index = FrameSource({"ko": frame}).load("KO")
    by_column = clean_ohlcv(frame.reset_index().rename(columns={"date": "Date"}))
    pd.testing.assert_frame_equal(by_index, by_column)
    assert frame_fingerprint(by_index) == frame_fingerprint(frame)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (
            lambda ls: ls[:3] + [ls[2]] + ls[3:],
            r"line 4 \(1999-11-02\) › duplicate date \(also at line 3 \(1999-11-02\)\)",
        ),
        (
            lambda ls: ls[:5] + [ls[5].replace("84.62", "")] + ls[6:],
            r"line 6 \(1999-11-05\) › open is missing",
        ),
        (
            lambda ls: ls[:5] + [ls[5].replace("84.62", "abc")] + ls[6:],
            r"line 6 \(1999-11-05\) › open is not a number \(got: 'abc'\)",
        ),
        (
            lambda ls: ls[:7] + ["1999-11-09,80,81,79,-1.0,0.5,100\n"] + ls[8:],
            r"line 8 \(1999-11-09\) › prices must be positive",
        ),
        (
            lambda ls: ls[:7] + ["1999-11-09,80,81,82,80.5,0.6,100\n"] + ls[8:],
            r"line 8 \(1999-11-09\) › low must not exceed high",
        ),
        (
            lambda ls: ls[:7] + ["1999-11-09,80,81,79,80.5,0.6,-5\n"] + ls[8:],
            r"line 8 \(1999-11-09\) › volume must not be negative",
        ),
        (
            lambda ls: ls[:4] + ["not-a-date,80,81,79,80.5,0.6,100\n"] + ls[5:],
            r"line 5 › date is not a date \(got: 'not-a-date'\)",
        ),
        (
            lambda ls: ["Date,Open,High,Low,Volume\n"],
            r"missing columns: close \(have: Date, Open, High, Low, Volume\)",
        ),
        (lambda ls: [HEADER], r"no rows of data"),
        (lambda ls: [], r"empty file"),
    ],
)
def test_bad_csv_names_file_and_row(tmp_path, mutate, message):
    path = write_csv(tmp_path, "BAD.csv", mutate(raw_lines()))
    with pytest.raises(DataError, match=message) as info:
        read_ohlcv_csv(path)
    assert "BAD.csv" in str(info.value) and "\n" not in str(info.value)


def test_documented_repairs_sort_and_drop_null_rows(tmp_path, caplog):
    lines = raw_lines(rows=30)
    shuffled = [lines[0], *reversed(lines[1:])] + ["2000-01-03,null,null,null,null,null,null\n"]
    frame = read_ohlcv_csv(write_csv(tmp_path, "REP.csv", shuffled))
    expected = read_ohlcv_csv(write_csv(tmp_path, "OK.csv", lines))
    pd.testing.assert_frame_equal(frame, expected)
    assert "not in date order" in caplog.text and "dropped 1 rows" in caplog.text


def test_unknown_symbol_and_missing_folder(tmp_path, source):
    with pytest.raises(DataError, match=r"unknown symbol ZZZZ"):
        source.load("ZZZZ")
    with pytest.raises(DataError, match=r"data folder not found"):
        CSVFolderSource(tmp_path / "missing")


@pytest.mark.parametrize(
    "bad", ["../../etc", "../evil", "a/b", "a\\b", "..", ".hidden", "", " ", "A" * 21, "AA..B", "x y"]
)
def test_symbols_are_validated_before_touching_files(bad):
    with pytest.raises(SymbolError, match=r"must be 1-20 characters"):
        validate_symbol(bad)


@pytest.mark.parametrize(
    "good, canonical", [("aapl", "AAPL"), ("BRK.B", "BRK.B"), ("^GSPC", "^GSPC"), ("ES=F", "ES=F")]
)
def test_valid_symbols_are_canonical(good, canonical):
    assert validate_symbol(good) == canonical


def test_folder_ignores_files_with_invalid_names(tmp_path):
    write_csv(tmp_path, "GOOD.csv", raw_lines(rows=5))
    write_csv(tmp_path, "bad name.csv", raw_lines(rows=5))
    assert CSVFolderSource(tmp_path).symbols() == ["GOOD"]


def test_nan_values_in_dataframe_are_rejected():
    frame = read_ohlcv_csv(BUNDLED / "KO.csv.gz").iloc[:20].copy()
    frame.iloc[7, 2] = np.nan
    with pytest.raises(DataError, match=r"DataFrame\[KO\] › row 7 \(1999-11-10\) › low is missing"):
        FrameSource({"KO": frame}).load("KO")


@pytest.mark.parametrize(
    "dates, expected",
    [
        (["2020-01-02", "2020-01-03"], ["2020-01-02", "2020-01-03"]),
        (["13/01/2020", "02/02/2020"], ["2020-01-13", "2020-02-02"]),  # a day above 12 says DD/MM
        (["01/13/2020", "02/02/2020"], ["2020-01-13", "2020-02-02"]),  # ... or MM/DD
        (["20200102", "20200103"], ["2020-01-02", "2020-01-03"]),
        (
            ["2020-01-02T16:00:00-05:00", "2020-01-03 16:00:00+09:00", "2020-01-06T16:00Z"],
            ["2020-01-02 16:00", "2020-01-03 16:00", "2020-01-06 16:00"],
        ),  # the bar keeps its local wall time
    ],
)
def test_one_date_format_per_file(dates, expected):
    parsed = parse_dates(pd.Series(dates), "X.csv", 2)
    assert list(parsed) == [pd.Timestamp(e) for e in expected]


@pytest.mark.parametrize(
    "dates, message",
    [
        (["01/02/2020", "03/04/2020"], r"X\.csv › line 2 › dates are ambiguous"),
        (
            ["13/01/2020", "01/14/2020"],
            r"X\.csv › line 3 › dates mix DD/MM/YYYY \(line 2: '13/01/2020'\) and MM/DD/YYYY",
        ),
        (
            ["2020-01-02", "01/03/2020"],
            r"line 3 › date is written DD/MM/YYYY or MM/DD/YYYY but the file's dates are YYYY-MM-DD",
        ),
        (["2020-01-02", "2020-02-30"], r"line 3 › date is not a date \(got: '2020-02-30'\)"),
        (["Jan 2, 2020"], r"line 2 › date is not a date in a supported format"),
    ],
)
def test_ambiguous_or_mixed_dates_are_refused(dates, message):
    with pytest.raises(DataError, match=message):
        parse_dates(pd.Series(dates), "X.csv", 2)


def test_a_dd_mm_file_is_read_with_the_right_dates(tmp_path):
    lines = raw_lines(rows=400)
    european = [lines[0]] + [f"{l[8:10]}/{l[5:7]}/{l[:4]}{l[10:]}" for l in lines[1:]]
    frame = read_ohlcv_csv(write_csv(tmp_path, "EU.csv", european))
    pd.testing.assert_frame_equal(frame, read_ohlcv_csv(write_csv(tmp_path, "ISO.csv", lines)))


def test_time_zone_aware_frames_keep_their_local_dates():
    frame = read_ohlcv_csv(BUNDLED / "KO.csv.gz").iloc[:30]
    aware = frame.copy()
    aware.index = aware.index.tz_localize("Asia/Tokyo")
    pd.testing.assert_frame_equal(FrameSource({"KO": aware}).load("KO"), frame)


def test_bundled_end_is_the_last_bar(source):
    assert max(source.load(s).index[-1] for s in source.symbols()) == pd.Timestamp(BUNDLED_END)
    assert source.sample_end == BUNDLED_END
    assert CSVFolderSource(BUNDLED).sample_end is None  # the same files as a user's folder: no special clock
