"""The shared base under both layers (ARCHITECTURE.md, decision 14: ``model/`` never imports
``pipeline/``; ``pipeline/`` builds on ``model/``). Everything here depends on nothing in the
project but this package:

- ``errors``: the one-line user error (:class:`UserError`) and its quoting helpers;
- ``section``: the base class of every params section and model config;
- ``labels``: the datasets' verb / object / HOI vocabularies (data/labels);
- ``body_parts``: keypoints, HAKE parts, their groups and the flip permutation;
- ``atomic_io``: atomic file writes (tables, checkpoints, bundles, JSON);
- ``numbers`` and ``progress``: how numbers are printed and progress bars shown.
"""
