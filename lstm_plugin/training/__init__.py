"""Training: the priority policy, training jobs, the trainer that publishes them, backends and the service.

Layer 4. May import every layer below (core, model, plugins, serving). The training service is in
parts: ``queue`` (the job state machine), ``dispatch`` (jobs to a backend), ``monitoring``
(snapshots and listeners) and ``service`` (the facade). See ``docs/training-service.md``.
"""
