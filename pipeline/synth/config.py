"""Parameters of the ``synth`` stage (params.yaml section ``synth``).

Sizes are in pixels; person heights are fractions of the image height (the figure's nominal
standing height); object scales are fractions of the person's height; rates are probabilities.
"""

from __future__ import annotations

from pydantic import field_validator, model_validator

from pipeline.params import Section
from pipeline.synth.catalog import ACTIONS

SCENE_KINDS = ("sparse", "crowded", "group", "tiny", "occluded", "cross_person")
HICO_ONLY_KINDS = ("cross_person",)  # its negative class is HICO-DET's no_interaction: not in V-COCO
Range = tuple[float, float]


class SceneMix(Section):
    """Share of each scene kind; normalised, so only the ratios matter.

    sparse: one person. crowded: 2–4 persons, each interacting or not, boxes apart.
    group: 2–4 persons doing the same action (cross-person cue). tiny: 1–3 persons of
    ``tiny_height``. occluded: 2–3 overlapping persons, sometimes partly covered by a screen.
    cross_person: a kicker whose pair only a second person's flag decides (pipeline/synth/cross.py);
    HICO-DET only (V-COCO images share the other kinds in their ratios).
    """

    sparse: float = 0.32
    crowded: float = 0.20
    group: float = 0.12
    tiny: float = 0.08
    occluded: float = 0.08
    cross_person: float = 0.20

    @model_validator(mode="after")
    def _positive(self) -> SceneMix:
        values = [getattr(self, k) for k in SCENE_KINDS]
        if min(values) < 0 or sum(values) <= 0:
            raise ValueError("scene shares must be >= 0 and not all 0")
        return self

    def shares(self, exclude: tuple[str, ...] = ()) -> dict[str, float]:
        """Normalised shares of the kinds not in ``exclude``."""
        kinds = [k for k in SCENE_KINDS if k not in exclude]
        total = sum(getattr(self, k) for k in kinds)
        return {k: getattr(self, k) / total for k in kinds}


class PoseFaults(Section):
    """Faults of the simulated AlphaPose output (``alphapose-results.json``)."""

    jitter: float = 0.012  # keypoint noise sigma, fraction of person height
    low_score_rate: float = 0.08  # visible keypoints reported with a low score (and more noise)
    missing_keypoint_rate: float = 0.03  # keypoints written as (0, 0, 0)
    miss_rate: float = 0.03  # persons not detected (persons of normal size)
    tiny_miss_rate: float = 0.25  # persons not detected, persons under ``tiny_below``
    tiny_below: float = 0.3  # person height (fraction of image height) that counts as tiny
    spurious_rate: float = 0.10  # mean number of spurious detections per image (Poisson)
    box_jitter: float = 0.03  # detector box noise sigma, fraction of box size

    @field_validator("low_score_rate", "missing_keypoint_rate", "miss_rate", "tiny_miss_rate")
    @classmethod
    def _rate(cls, v: float) -> float:
        if not 0 <= v <= 1:
            raise ValueError("must be a probability in [0, 1]")
        return v


class SynthConfig(Section):
    """The synthetic HOI dataset. Defaults: 2,000 + 320 HICO-DET-format images and 150 + 100
    V-COCO-format images of 224 px, which generate in well under a minute on one core."""

    hico_train: int = 2000
    hico_test: int = 320  # files on disk, including those test_hico.json omits
    vcoco_train: int = 150
    vcoco_test: int = 100
    width: tuple[int, int] = (224, 224)  # image width range (inclusive), pixels
    height: tuple[int, int] = (224, 224)  # image height range (inclusive), pixels
    jpeg_quality: int = 90
    actions: tuple[str, ...] = ("hold", "kick", "sit_on", "ride", "carry", "look")
    mix: SceneMix = SceneMix()
    person_height: Range = (0.40, 0.75)  # easy scenes (sparse, crowded, group)
    occluded_height: Range = (0.40, 0.65)
    tiny_height: Range = (0.12, 0.25)
    cross_person_height: Range = (0.30, 0.50)  # smaller: room for the decoy flags
    crowd_size: tuple[int, int] = (2, 4)  # persons in crowded and group scenes
    object_scale: Range = (0.24, 0.36)  # hand-held objects' longest side / person height
    interact_rate: float = 0.6  # persons interacting, crowded / tiny / occluded scenes
    sparse_interact_rate: float = 0.9  # the one person of a sparse scene
    distractors: tuple[int, int] = (0, 2)  # non-interacting objects per image, kept clear of persons
    no_interaction_rate: float = 0.10  # idle persons paired with a distractor as no_interaction
    duplicate_box_rate: float = 0.3  # extra verbs of a pair that get a near-duplicate human box
    occluder_rate: float = 0.5  # occluded scenes that also get a screen over part of a person
    texture_rate: float = 0.5  # images with a lightly textured background
    hico_unannotated_test_rate: float = 0.02  # test images on disk but not in test_hico.json
    vcoco_unlabelled_rate: float = 0.15  # idle persons in COCO but not in V-COCO
    vcoco_roleless_rate: float = 0.05  # positives whose role object is not annotated
    cross_person_control: bool = False  # cross_person scenes without the cue: the second person's hand is empty
    pose: PoseFaults = PoseFaults()

    @field_validator("actions")
    @classmethod
    def _known_actions(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [a for a in v if a not in ACTIONS]
        if unknown or not v:
            raise ValueError(f"unknown action(s) {unknown}; choose from {sorted(ACTIONS)}")
        return tuple(dict.fromkeys(v))

    @field_validator("width", "height", "person_height", "occluded_height", "tiny_height", "cross_person_height",
                     "crowd_size", "object_scale", "distractors")
    @classmethod
    def _ordered(cls, v: tuple) -> tuple:
        if v[0] > v[1] or v[0] < 0:
            raise ValueError("expected [low, high] with 0 <= low <= high")
        return v

    @model_validator(mode="after")
    def _sizes(self) -> SynthConfig:
        if min(self.width[0], self.height[0]) < 64:
            raise ValueError("images must be at least 64 px wide and high")
        if self.crowd_size[0] < 2:
            raise ValueError("crowd_size: crowded scenes need at least 2 persons")
        if min(self.hico_train, self.hico_test, self.vcoco_train, self.vcoco_test) < 0:
            raise ValueError("image counts must be >= 0")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError("jpeg_quality must be in 1..100")
        if self.vcoco_train + self.vcoco_test > 0 and all(getattr(self.mix, k) == 0 for k in SCENE_KINDS
                                                             if k not in HICO_ONLY_KINDS):
            raise ValueError(f"mix: V-COCO images need a positive share of a kind other than {HICO_ONLY_KINDS}")
        return self


def tiny_config(**overrides: object) -> SynthConfig:
    """A dataset small enough for tests: 12 + 6 HICO-DET and 8 + 6 V-COCO images of 128 px."""
    base = dict(hico_train=12, hico_test=6, vcoco_train=8, vcoco_test=6, width=(128, 128),
                height=(128, 128))
    base.update(overrides)
    return SynthConfig(**base)
