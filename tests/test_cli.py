"""The command line as a user runs it: real processes, real files, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import TINY


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lstm_plugin", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    (folder / "tiny.json").write_text(json.dumps(TINY))
    return folder


@pytest.fixture(scope="module")
def trained_models(workdir) -> Path:
    proc = run(
        "train",
        "AAPL",
        "MSFT",
        "--as-of",
        "2015-12-31",
        "--models",
        "M",
        "--config",
        "tiny.json",
        "-q",
        cwd=workdir,
    )
    assert proc.returncode == 0, proc.stderr
    assert "AAPL" in proc.stdout and "trained" in proc.stdout
    return workdir / "M"


@pytest.mark.slow
def test_train_writes_onnx_and_metadata(trained_models):
    for symbol in ("AAPL", "MSFT"):
        folder = trained_models / "specific" / symbol
        assert (folder / "v000001.onnx").stat().st_size > 1000
        assert json.loads((folder / "v000001.json").read_text())["trained_at"] == "2015-12-31T00:00:00"


@pytest.mark.slow
def test_predict_json_prints_the_documented_dicts(workdir, trained_models):
    proc = run(
        "predict",
        "AAPL",
        "MSFT",
        "--as-of",
        "2016-03-31",
        "--models",
        "M",
        "--config",
        "tiny.json",
        "--json",
        cwd=workdir,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert set(result) == {"AAPL", "MSFT"}
    for p in result.values():
        assert p["status"] == "success" and p["model_type"] == "specific"
        assert {
            "predicted_direction",
            "confidence",
            "price_change_pct",
            "reliability",
            "model_version",
            "as_of",
        } <= set(p)


@pytest.mark.slow
def test_retraining_the_same_job_reuses_it(workdir, trained_models):
    proc = run(
        "train",
        "AAPL",
        "--as-of",
        "2015-12-31",
        "--models",
        "M",
        "--config",
        "tiny.json",
        "--json",
        "-q",
        cwd=workdir,
    )
    assert proc.returncode == 0 and json.loads(proc.stdout)["AAPL"]["status"] == "reused"


@pytest.mark.slow
def test_unseen_csv_folder_and_universal_fallback(workdir, unseen_csv_dir):
    common = ("--models", "U", "--config", "tiny.json", "--data", str(unseen_csv_dir), "-q")
    assert run("train", "ABT", "--as-of", "2015-12-31", *common, cwd=workdir).returncode == 0
    before = json.loads(
        run("predict", "ABT", "AMD", "--as-of", "2016-03-31", "--json", *common, cwd=workdir).stdout
    )
    assert before["ABT"]["status"] == "success" and before["ABT"]["model_type"] == "specific"
    assert before["AMD"]["status"] == "not_available"
    proc = run("train", "--universal", "--as-of", "2015-12-31", "--json", *common, cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["universal"]["symbols"] == ["ABT", "AMD", "DIS"]
    after = json.loads(
        run("predict", "ABT", "AMD", "--as-of", "2016-03-31", "--json", *common, cwd=workdir).stdout
    )
    assert after["ABT"]["model_type"] == "specific" and after["AMD"]["model_type"] == "universal"
    assert after["AMD"]["status"] == "success"
    early = json.loads(run("predict", "AMD", "--as-of", "2015-12-30", "--json", *common, cwd=workdir).stdout)
    assert early["AMD"]["status"] == "not_available"  # the universal model is dated later
    status = json.loads(
        run("status", "ABT", "AMD", "--as-of", "2016-01-10", "--json", *common, cwd=workdir).stdout
    )
    assert status["ABT"]["status"] == "ready" and status["AMD"]["status"] == "not_available"
    assert status["AMD"]["served_by"] == "universal"


def test_truncated_model_still_answers(workdir, trained_models, tmp_path):
    import shutil

    models = tmp_path / "M"
    shutil.copytree(trained_models, models)
    onnx_file = models / "specific" / "AAPL" / "v000001.onnx"
    onnx_file.write_bytes(onnx_file.read_bytes()[:500])
    proc = run(
        "predict",
        "AAPL",
        "--as-of",
        "2016-03-31",
        "--models",
        str(models),
        "--config",
        "tiny.json",
        "--json",
        cwd=workdir,
    )
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["AAPL"]["status"] == "not_available"
    assert "sha256 mismatch" in proc.stderr


def test_path_like_symbol_exits_2_and_writes_nothing(tmp_path):
    proc = run("train", "../evil", "--models", "M", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "must be 1-20 characters" in proc.stderr
    assert list(tmp_path.iterdir()) == [] and not (tmp_path.parent / "evil").exists()


@pytest.mark.parametrize(
    "config_text, args, expected",
    [
        (
            '{"lstm": {"weight": 1.7}}',
            ("predict", "AAPL"),
            "lstm_config.json › lstm.weight › must be between 0 and 1 (got: 1.7)",
        ),
        ('{"lstm": {"weight": 0.3,}}', ("status",), "lstm_config.json › line 1, column 25 › invalid JSON"),
        ('{"lstm": {"wieght": 0.3}}', ("status",), "unknown key (did you mean 'weight'?)"),
        ("{}", ("predict", "NOPE"), "unknown symbol NOPE"),
        ("{}", ("predict", "AAPL", "--as-of", "yesterday-ish"), "--as-of › must be a date"),
        ("{}", ("train",), "name at least one SYMBOL"),
        ("{}", ("frobnicate",), "invalid choice: 'frobnicate'"),
    ],
)
@pytest.mark.slow
def test_bad_input_exits_2_with_one_line(tmp_path, config_text, args, expected):
    (tmp_path / "lstm_config.json").write_text(config_text)
    extra = () if args[0] == "frobnicate" else ("--config", "lstm_config.json", "--models", "M")
    proc = run(*args, *extra, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert expected in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_broken_csv_in_data_folder_exits_2(tmp_path, unseen_csv_dir):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(unseen_csv_dir, data)
    lines = (data / "AMD.csv").read_text().splitlines(keepends=True)
    lines[100] = lines[100].split(",")[0] + ",x,y,z\n"
    (data / "AMD.csv").write_text("".join(lines))
    proc = run("train", "AMD", "--data", "data", "--models", "M", "-q", cwd=tmp_path)
    assert proc.returncode == 2 and "AMD.csv › line 101" in proc.stderr and proc.stderr.count("\n") == 1


@pytest.mark.slow
def test_status_json_and_schema(workdir, trained_models):
    proc = run(
        "status", "--models", "M", "--config", "tiny.json", "--as-of", "2016-01-05", "--json", cwd=workdir
    )
    status = json.loads(proc.stdout)
    assert status["AAPL"]["status"] == "ready" and status["KO"]["status"] == "not_available"
    schema = json.loads(run("schema", cwd=workdir).stdout)
    assert "lstm" in schema["properties"]


@pytest.mark.slow
def test_train_on_local_and_ray_backends_registers_the_same_models(tmp_path):
    config = json.loads(json.dumps(TINY))
    config["lstm_service"] = {"ray": {"num_cpus": 2}, "universal": {"enabled": False}}
    (tmp_path / "c.json").write_text(json.dumps(config))
    four = ("AAPL", "MSFT", "KO", "XOM")
    predictions = {}
    for backend in ("local", "ray"):
        common = ("--config", "c.json", "--models", backend)
        proc = run(
            "train",
            *four,
            "--as-of",
            "2015-12-31",
            "--backend",
            backend,
            "--json",
            "-q",
            *common,
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stderr
        assert {s: r["status"] for s, r in json.loads(proc.stdout).items()} == dict.fromkeys(four, "trained")
        assert sorted(p.name for p in (tmp_path / backend / "specific").iterdir()) == sorted(four)
        proc = run("predict", *four, "--as-of", "2016-03-31", "--json", *common, cwd=tmp_path)
        predictions[backend] = json.loads(proc.stdout)
    for symbol in four:
        local, ray = predictions["local"][symbol], predictions["ray"][symbol]
        assert local["status"] == ray["status"] == "success"
        for name, value in local["probabilities"].items():
            assert abs(value - ray["probabilities"][name]) <= 1e-6
        assert abs(local["price_change_pct"] - ray["price_change_pct"]) <= 1e-4


@pytest.mark.slow
def test_service_command_shows_plan_and_last_snapshot(workdir, trained_models):
    proc = run(
        "service",
        "KO",
        "AAPL",
        "--category",
        "portfolio",
        "--as-of",
        "2016-01-05",
        "--models",
        "M",
        "--config",
        "tiny.json",
        "--json",
        cwd=workdir,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert [e["symbol"] for e in result["plan"]] == ["KO", "AAPL"]
    assert result["plan"][0]["reasons"] == ["portfolio 20", "model not available -20"]
    assert result["snapshot"]["counts"]["done"] >= 1 and result["snapshot"]["queue"] == []
    text = run("service", "--as-of", "2016-01-05", "--models", "M", "--config", "tiny.json", cwd=workdir)
    assert text.returncode == 0 and "scanning" in text.stdout and "last service" in text.stdout


def test_failed_training_exits_2_and_still_reports_json(tmp_path):
    (tmp_path / "tiny.json").write_text(json.dumps(TINY))
    proc = run(
        "train",
        "KO",
        "--as-of",
        "1995-01-01",
        "--config",
        "tiny.json",
        "--models",
        "M",
        "--json",
        "-q",
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "train › KO › KO › no bars at or before 1995-01-01" in proc.stderr
    assert json.loads(proc.stdout)["KO"]["status"] == "failed"


@pytest.mark.slow
def test_ray_backend_connects_to_a_running_cluster_by_address(tmp_path):
    import os

    from .ray_heads import ray_head, train_on_ray

    env = dict(os.environ, RAY_AUTH_MODE="disabled")
    with ray_head(cpus=2, own_temp=True, env=env) as address:
        proc = train_on_ray(tmp_path, {"address": address}, "-q", symbols=("KO", "PG"), env=env)
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout)
        assert {s: r["status"] for s, r in result.items()} == {"KO": "trained", "PG": "trained"}
