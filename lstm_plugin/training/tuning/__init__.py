"""Per-model hyperparameter tuning: Optuna studies on walk-forward validation folds (docs/tuning.md).

:mod:`~lstm_plugin.training.tuning.folds` holds the maths, :mod:`~lstm_plugin.training.tuning.trial` one
trial as a backend job and :mod:`~lstm_plugin.training.tuning.study` the driver; the settings a study
chose, which trainings and serving read, live in :mod:`lstm_plugin.serving.tuned`.
"""
