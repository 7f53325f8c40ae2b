"""The body model both layers share: COCO-17 keypoints, the ten HAKE parts, their six groups
and the horizontal-flip permutation (ARCHITECTURE.md, decision 4). The parquet schemas in
pipeline/tables.py and the network's masks and transforms read them from here."""

from __future__ import annotations

NUM_KEYPOINTS = 17  # COCO-17 order, (x, y, score) each
NUM_PARTS = 10  # HAKE parts, order in PART_NAMES

PART_NAMES = (
    "right_foot", "right_leg", "left_leg", "left_foot", "hip",
    "head", "right_hand", "right_arm", "left_arm", "left_hand",
)
PART_GROUP_NAMES = ("foot", "leg", "hip", "hand", "arm", "head")
# part index -> group index (foot {0,3}, leg {1,2}, hip {4}, hand {6,9}, arm {7,8}, head {5})
PART_TO_GROUP = (0, 1, 1, 0, 2, 5, 3, 4, 4, 3)
# a horizontal flip maps part i to FLIP_PARTS[i]
FLIP_PARTS = (3, 2, 1, 0, 4, 5, 9, 8, 7, 6)
