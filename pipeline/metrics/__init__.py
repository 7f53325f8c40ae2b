"""HOI evaluators: the official protocols (README, "Evaluation"; the rules each module follows
are stated in its docstring).

Modules, one responsibility each:

- ``ap``: precision/recall from ranked true-positive flags and AP (11-point, all-point),
  vectorised over many classes at once.
- ``matching``: the ragged detection x ground-truth join that finds each detection's best
  ground truth (box IoU from model/box_geometry.py, with or without the inclusive "+1" pixel
  convention), and the greedy "first come, first matched" true-positive rule shared by every
  protocol.
- ``hico``: HICO-DET HOI mAP (Default and Known Object; Full / Rare / Non-rare).
- ``interactiveness_ap``: the TIN++ / BPM interactiveness AP, per scene split and per body part.
- ``vcoco``: the official V-COCO agent and role AP (Scenario 1 and 2).
- ``report``: flat metric names, PR-curve rows and the human-readable text report.

Conventions: boxes are ``x1, y1, x2, y2`` absolute pixels of the original image; every metric
is a fraction in [0, 1] (papers print percentages).
"""
