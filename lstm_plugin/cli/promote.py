"""``lstm-plugin promote``: serve a shelved candidate by hand, or set a version aside (docs/models.md)."""

from __future__ import annotations

import argparse
from typing import Any

from lstm_plugin.cli.args import UsageError, models_folder
from lstm_plugin.core.config import load_config
from lstm_plugin.core.data import validate_symbol
from lstm_plugin.core.statuses import ModelType
from lstm_plugin.model.model_files import ModelRecord
from lstm_plugin.serving.registry import UNIVERSAL_NAME, ModelRegistry

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


def choose_version(records: list[ModelRecord], version: int | None, discard: bool) -> ModelRecord:
    """The version ``promote`` acts on: ``version``, else the newest candidate (``UsageError`` if none)."""
    if version is not None:
        chosen = next((r for r in records if r.version == version), None)
        if chosen is None:
            listed = ", ".join(f"v{r.version}" for r in sorted(records, key=lambda r: r.version)) or "none"
            raise UsageError(f"--version › no valid version {version} (versions: {listed})")
        return chosen
    candidate = next((r for r in records if r.stage == "candidate"), None)  # records are newest first
    if candidate is None:
        action = "discard" if discard else "promote"
        raise UsageError(f"no shelved candidate to {action}; give --version N")
    return candidate


def cmd_promote(args: argparse.Namespace) -> dict[str, Any]:
    config = load_config(args.config)
    registry = ModelRegistry(models_folder(args.models, config.registry.path), config.registry.keep_versions)
    model_type: ModelType = "universal" if args.universal else "specific"
    if args.universal == bool(args.symbol):
        raise UsageError("give a SYMBOL, or --universal for the pooled model")
    name = UNIVERSAL_NAME if args.universal else validate_symbol(args.symbol)
    records = registry.records(model_type, name)
    chosen = choose_version(records, args.version, args.discard)
    served = registry.resolve(model_type, name)
    if not args.discard and chosen.stage == "discarded" and not args.force:
        why = chosen.metadata.get("stage_reason") or "set aside"
        raise UsageError(f"{chosen.label} was discarded ({why}); serving it again needs --force")
    if not args.discard and served is not None and chosen.trained_at < served.trained_at:
        raise UsageError(
            f"{chosen.label} was trained before the served {served.label} "
            f"({chosen.metadata['trained_at'][:10]} < {served.metadata['trained_at'][:10]}); "
            f"it would not serve; to serve older models again, discard the newer one "
            f"(`lstm-plugin promote {args.symbol or '--universal'} --version {served.version} --discard`)"
        )
    stage, reason = ("discarded", "discarded by hand") if args.discard else ("production", "promoted by hand")
    updated = registry.set_stage(model_type, name, chosen.version, stage, reason)
    now = registry.resolve(model_type, name)
    result = {
        "model_type": model_type,
        "symbol": name,
        "model_version": updated.version,
        "trained_at": updated.metadata["trained_at"],
        "stage": stage,
        "was": chosen.stage,
        "served_version": None if now is None else now.version,
    }
    if not args.json:
        serving = "nothing" if now is None else now.label
        print(f"{updated.label}: {stage} (was {chosen.stage}); serving now: {serving}")
    return result
