"""Registry: versions, as_of lookups, retention, reuse, corruption, and a process killed mid-save."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from lstm_plugin import FrameSource, ModelError, ModelRegistry, ModelTrainer

from .conftest import tiny_config


def publish_copy(registry: ModelRegistry, record, trained_at: str, blob: bytes | None = None) -> object:
    metadata = dict(record.metadata, trained_at=pd.Timestamp(trained_at).isoformat())
    return registry.publish(record.model_type, record.symbol, blob or record.read_bytes(), metadata)


def test_metadata_has_every_documented_field(trained):
    meta = trained["outcomes"]["AAPL"].record.metadata
    for key in (
        "symbol",
        "model_type",
        "version",
        "trained_at",
        "train_start",
        "train_end",
        "horizon",
        "window",
        "features",
        "config_hash",
        "metrics",
        "sha256",
        "versions",
        "training_key",
        "scaler",
    ):
        assert key in meta, key
    assert meta["symbol"] == "AAPL" and meta["model_type"] == "specific" and meta["version"] == 1
    assert {"torch", "onnx", "onnxruntime", "opset"} <= set(meta["versions"])


def test_only_onnx_and_json_are_written(trained):
    """Models are ONNX and JSON; beside them only the track record of served forecasts (docs/dashboard.md)."""
    names = [p.name for p in trained["root"].rglob("*") if p.is_file()]
    ledger = [n for n in names if n.startswith("track_record.sqlite")]
    models = [n for n in names if n not in ledger]
    assert models and all(n.endswith((".onnx", ".json")) or n == ".lock" for n in models), names


def test_as_of_returns_newest_version_trained_by_then(copy_registry):
    registry = copy_registry()
    first = registry.resolve("specific", "AAPL")
    later = publish_copy(registry, first, "2016-06-30")
    assert later.version == 2
    assert registry.resolve("specific", "AAPL", "2016-03-31").version == 1
    assert registry.resolve("specific", "AAPL", "2016-06-30").version == 2
    assert registry.resolve("specific", "AAPL", "2015-12-30") is None
    assert registry.resolve("specific", "AAPL").version == 2


def test_retention_keeps_the_newest(copy_registry):
    registry = copy_registry()
    registry.keep_versions = 2
    first = registry.resolve("specific", "MSFT")
    blob = first.read_bytes()
    for month in ("2016-01-31", "2016-02-29", "2016-03-31"):
        publish_copy(registry, first, month, blob)
    versions = [r.version for r in registry.records("specific", "MSFT")]
    assert versions == [4, 3]
    assert sorted(p.name for p in registry.folder("specific", "MSFT").glob("v*.onnx")) == [
        "v000003.onnx",
        "v000004.onnx",
    ]


@pytest.mark.parametrize("damage", ["truncate", "tamper", "delete", "bad_json"])
def test_damaged_version_is_skipped_and_previous_serves(copy_registry, caplog, damage):
    registry = copy_registry()
    first = registry.resolve("specific", "AAPL")
    second = publish_copy(registry, first, "2016-01-31")
    if damage == "truncate":
        second.onnx_path.write_bytes(second.onnx_path.read_bytes()[:100])
    elif damage == "tamper":
        blob = bytearray(second.onnx_path.read_bytes())
        blob[-10] ^= 0xFF
        second.onnx_path.write_bytes(bytes(blob))
    elif damage == "delete":
        second.onnx_path.unlink()
    else:
        (second.onnx_path.with_suffix(".json")).write_text("{not json")
    fresh = ModelRegistry(registry.root)
    assert fresh.resolve("specific", "AAPL").version == 1
    assert "skipping" in caplog.text


def test_unreadable_pointer_falls_back_to_metadata(copy_registry, caplog):
    registry = copy_registry()
    (registry.folder("specific", "AAPL") / "index.json").write_text("garbage")
    assert ModelRegistry(registry.root).resolve("specific", "AAPL").version == 1
    assert "unreadable" in caplog.text


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    import lstm_plugin.serving.registry as reg
    import lstm_plugin.serving.version_folder as folder
    root, point = sys.argv[1], sys.argv[2]
    registry = reg.ModelRegistry(root)
    record = registry.resolve("specific", "AAPL")
    calls = []
    real = reg.write_atomic
    def dying(path, blob):
        calls.append(path.name)
        step = len(calls)
        if point == f"mid-write-{step}":
            path.with_name(".tmp-dead-" + path.name).write_bytes(blob[: len(blob) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
        real(path, blob)
        if point == f"after-{step}":
            os.kill(os.getpid(), signal.SIGKILL)
    reg.write_atomic = folder.write_atomic = dying  # the model, its metadata, then the index
    registry.publish("specific", "AAPL", record.read_bytes(), dict(record.metadata, trained_at="2016-02-01"))
    """
)


@pytest.mark.parametrize(
    "point, committed",
    [("mid-write-1", False), ("after-1", False), ("after-2", True), ("mid-write-3", True)],
)
@pytest.mark.slow
def test_sigkill_during_save_loses_nothing(copy_registry, caplog, point, committed):
    """Killed before the metadata is written, the save left nothing that serves; killed after it,
    the new version is complete and serves. Either way every earlier version is intact."""
    registry = copy_registry()
    before = registry.resolve("specific", "AAPL")
    proc = subprocess.run([sys.executable, "-c", KILLER, str(registry.root), point], capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()
    after = ModelRegistry(registry.root)
    assert [r.version for r in after.records("specific", "AAPL")] == ([2, 1] if committed else [1])
    first = after.records("specific", "AAPL")[-1]
    assert first.version == 1 and first.metadata["sha256"] == before.metadata["sha256"]
    served = after.resolve("specific", "AAPL")
    assert served.version == (2 if committed else 1)
    # the next save works, never reuses a complete version's number, and clears only the leftovers
    nxt = publish_copy(after, served, "2016-03-01")
    assert nxt.version == (3 if committed else 2)
    folder = after.folder("specific", "AAPL")
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".lock")) == sorted(
        [f"v{v:06d}.{x}" for v in range(1, nxt.version + 1) for x in ("onnx", "json")] + ["index.json"]
    )
    assert json.loads((folder / "index.json").read_text())["versions"] == [
        v.version for v in reversed(after.records("specific", "AAPL"))
    ]
    assert after.resolve("specific", "AAPL").version == nxt.version
    assert ("rebuilt the index" in caplog.text) == committed


def test_identical_training_is_reused_changed_data_is_not(tmp_path, source):
    cfg = tiny_config()
    frame = source.load("KO", end="2011-12-31").loc["2007-01-01":]
    registry = ModelRegistry(tmp_path / "m")
    first = ModelTrainer(cfg, FrameSource({"KO": frame}), registry, progress=False).train_specific(
        "KO", as_of="2011-12-31"
    )
    again = ModelTrainer(cfg, FrameSource({"KO": frame}), registry, progress=False).train_specific(
        "KO", as_of="2011-12-31"
    )
    assert not first.reused and again.reused and again.record.version == first.record.version

    changed = frame.copy()
    changed.iloc[500, changed.columns.get_loc("volume")] *= 1.01  # same end date, different content
    redo = ModelTrainer(cfg, FrameSource({"KO": changed}), registry, progress=False).train_specific(
        "KO", as_of="2011-12-31"
    )
    assert not redo.reused and redo.record.version == 2

    other_config = tiny_config(model={"hidden_size": 6})
    redo2 = ModelTrainer(other_config, FrameSource({"KO": frame}), registry, progress=False).train_specific(
        "KO", as_of="2011-12-31"
    )
    assert not redo2.reused and redo2.record.metadata["config_hash"] != first.record.metadata["config_hash"]

    forced = ModelTrainer(cfg, FrameSource({"KO": frame}), registry, progress=False).train_specific(
        "KO", as_of="2011-12-31", force=True
    )
    assert not forced.reused


def test_metadata_json_is_plain_data(trained):
    folder = trained["registry"].folder("specific", "AAPL")
    meta = json.loads((folder / "v000001.json").read_text())
    assert meta["onnx_file"] == "v000001.onnx"
    assert json.loads((folder / "index.json").read_text()) == {"versions": [1]}


def test_retention_never_deletes_what_still_serves(copy_registry):
    """keep_versions 2 with candidates: the production model behind each kept candidate stays,
    so every as_of from the oldest kept version on is answered as before."""
    registry = copy_registry()
    registry.keep_versions = 2
    first = registry.resolve("specific", "AAPL")
    blob = first.read_bytes()
    for month in ("2016-01-31", "2016-02-29", "2016-03-31"):
        metadata = dict(
            first.metadata, trained_at=f"{month}T00:00:00", stage="candidate", stage_reason="worse"
        )
        registry.publish("specific", "AAPL", blob, metadata)
    assert [r.version for r in registry.records("specific", "AAPL")] == [4, 3, 1]
    assert registry.resolve("specific", "AAPL", "2016-03-15").version == 1
    assert registry.resolve("specific", "AAPL").version == 1
    promoted = registry.publish(
        "specific", "AAPL", blob, dict(first.metadata, trained_at="2016-04-30T00:00:00")
    )
    assert [r.version for r in registry.records("specific", "AAPL")] == [promoted.version, 4, 1]
    assert registry.resolve("specific", "AAPL", "2016-04-15").version == 1  # behind candidate v4, still kept


def test_a_version_that_would_not_serve_is_never_written(copy_registry):
    registry = copy_registry()
    first = registry.resolve("specific", "AAPL")
    folder = registry.folder("specific", "AAPL")
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(ModelError, match=r"data_end 2015-12-31 is after trained_at 2015-06-30"):
        registry.publish(
            "specific", "AAPL", first.read_bytes(), dict(first.metadata, trained_at="2015-06-30T00:00:00")
        )
    with pytest.raises(ModelError, match=r"exported for symbol 'AAPL', not 'MSFT'"):
        registry.publish("specific", "MSFT", first.read_bytes(), dict(first.metadata, symbol="MSFT"))
    assert sorted(p.name for p in folder.iterdir()) == before


def test_the_export_records_what_the_model_was_trained_for(trained):
    from lstm_plugin.model.model_files import onnx_signature

    record = trained["outcomes"]["AAPL"].record
    embedded = onnx_signature(record.read_bytes()).properties
    assert embedded["symbol"] == "AAPL" and embedded["model_type"] == "specific"
    assert embedded["trained_at"] == record.metadata["trained_at"] == "2015-12-31T00:00:00"
    assert embedded["data_end"] == record.metadata["data_end"] <= record.metadata["trained_at"]


def test_write_atomic_never_writes_through_a_planted_link(tmp_path):
    from lstm_plugin.core.files import write_atomic

    target = tmp_path / "precious.txt"
    target.write_text("precious")
    for name in (".tmp-service.json", ".service.json.tmp", "service.json"):
        (tmp_path / name).symlink_to(target)
    write_atomic(tmp_path / "service.json", b"{}")
    assert target.read_text() == "precious"
    assert (tmp_path / "service.json").read_text() == "{}" and not (tmp_path / "service.json").is_symlink()


# ---------------------------------------------------------------------- a run's view (docs/models.md)
def test_a_runs_view_serves_only_what_it_adopted(copy_registry):
    from lstm_plugin.serving.run_registry import RunRegistry

    shared = copy_registry()
    theirs = shared.resolve("specific", "AAPL")
    key, stamped = theirs.metadata["training_key"], theirs.trained_at
    view = RunRegistry(shared.root, keep_versions=2)
    assert view.records("specific", "AAPL") == [] and view.resolve("specific", "AAPL") is None
    assert view.symbols() == [] and view.shared_records("specific", "AAPL") == [theirs]
    # another run's version is the same training only when stamped at the same time
    assert view.find_training("specific", "AAPL", key, stamped) == theirs
    assert view.find_training("specific", "AAPL", key, stamped + pd.Timedelta(days=1)) is None
    assert view.training_keys("specific", "AAPL", stamped) == (frozenset({key}), True)

    mine = view.adopt(theirs, "candidate", "worse here")
    assert (mine.version, mine.stage, mine.metadata["registry_version"]) == (1, "candidate", 1)
    assert view.resolve("specific", "AAPL") is None  # shelved by this run, whatever the folder says
    assert view.resolve("specific", "AAPL", candidates=True) is mine and view.owns(mine)
    assert shared.resolve("specific", "AAPL").stage == "production"  # the folder is not rewritten

    blob = theirs.read_bytes()
    for month in ("2016-01-31", "2016-02-29", "2016-03-31"):  # keep_versions 2: retention runs
        view.publish("specific", "AAPL", blob, dict(theirs.metadata, trained_at=f"{month}T00:00:00"))
    assert [r.version for r in view.records("specific", "AAPL")] == [4, 3, 2, 1]  # the run's own numbers
    assert all(r.onnx_path.exists() for r in view.records("specific", "AAPL"))  # none removed mid-run


def test_the_paired_comparison_uses_only_bars_the_served_model_never_trained_on(trained):
    import numpy as np

    from lstm_plugin.model.samples import SampleSet
    from lstm_plugin.training.trainer import unseen_by

    served = trained["registry"].resolve("specific", "AAPL")
    end = pd.Timestamp(served.metadata["train_end"])
    dates = pd.date_range(end - pd.Timedelta(days=5), periods=10, freq="D").to_numpy()
    samples = SampleSet(np.zeros((10, 2, 1), "float32"), np.arange(10.0), dates)
    kept = unseen_by(served, samples)
    assert kept is not None and list(kept.dates) == [d for d in dates if d > end.to_datetime64()]
    assert len(kept) == 4 and unseen_by(None, samples) is samples
