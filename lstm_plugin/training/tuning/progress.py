"""A study's progress bar: finished trials, how many were pruned, the best value so far (stderr; ``-q``
silences it)."""

from __future__ import annotations

from typing import Any

from lstm_plugin.training.tuning.ledger import StudyView

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


class TrialBar:
    """A tqdm bar over a study's trials; ``shown=False`` keeps it silent (a service's passes)."""

    def __init__(self, label: str, trials: int, shown: bool = True) -> None:
        from tqdm.auto import tqdm

        self.bar: Any = tqdm(
            total=trials, desc=f"tuning {label}", unit="trial", disable=not shown, leave=False
        )

    def show(self, view: StudyView) -> None:
        self.bar.update(view.finished - self.bar.n)
        best = view.best()
        postfix = {"pruned": str(view.pruned)}
        if best is not None:
            postfix["best"] = f"{best.value:+.4f}"
        self.bar.set_postfix(postfix)

    def __enter__(self) -> TrialBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()
