"""The BPM pipeline, built on ``model/`` (ARCHITECTURE decision 14): one module per DVC stage,
each with a pure core (tables in, tables out) and a thin ``run()`` that reads params, files and
writes outputs (``python -m pipeline.stage NAME`` runs ``pipeline.NAME.main``).

Stages, in pipeline order: ``synth`` (package: the synthetic datasets), ``ingest``, ``pose``
(backends in ``pose_backends/``), ``parts``, ``scenes``, ``train`` (validation in
``validation``), ``bundle``, ``evaluate`` (shared core ``evaluate_core``, scorers in
``metrics/``). Commands beside the stages: ``predict/``, ``show``, ``scene_report/``,
``ablations/``, ``evaluate_imported``. Around them: ``readers/`` (annotation files),
``inputs/`` (untrusted images, JSON, pickles), ``interop/`` (official formats, downloads,
weights), ``params``, ``tables``, ``runlog``, ``stage`` and ``stage_deps``.
"""
