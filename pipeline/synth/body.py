"""Articulated stick figures for the synthetic dataset: the 17 COCO keypoints of a person in a
named pose, from limb angles and fixed body proportions.

Geometry is in absolute pixels, ``y`` pointing down. A figure is anchored at its hip centre and
scaled by its nominal standing height ``H`` (head top to soles of a standing figure, pixels).
Limb angles are in degrees from straight down; a positive angle swings the limb *outward*:
forward (towards ``facing``) in profile view, away from the body's midline in front view.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KEYPOINT_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)
KP = {name: i for i, name in enumerate(KEYPOINT_NAMES)}
# (shoulder, elbow, wrist) and (hip, knee, ankle) per side
ARM = {"left": (5, 7, 9), "right": (6, 8, 10)}
LEG = {"left": (11, 13, 15), "right": (12, 14, 16)}
# limb segments drawn as thick lines (torso is drawn separately, neck to hip centre)
BONES = ((5, 7), (7, 9), (6, 8), (8, 10), (11, 13), (13, 15), (12, 14), (14, 16), (5, 6), (11, 12))

# proportions, fractions of the standing height H (head top at -0.51 H, soles at +0.49 H)
THIGH, SHIN = 0.245, 0.245
TORSO = 0.30  # hip centre to shoulder centre
UPPER_ARM, FOREARM = 0.165, 0.155
SHOULDER_HALF, HIP_HALF = 0.095, 0.06  # front view; profile uses a small depth offset
DEPTH_HALF = 0.018
NECK = 0.07
HEAD_R = 0.07
LINE = 0.035  # limb width


@dataclass(frozen=True)
class PoseSpec:
    """Limb angles (degrees) of the active and passive side, and the view."""

    arm_active: tuple[float, float]  # (upper arm, forearm)
    arm_passive: tuple[float, float]
    leg_active: tuple[float, float]  # (thigh, shin)
    leg_passive: tuple[float, float]
    view: str  # "front" | "profile" | "any"
    lean: float = 0.0  # torso lean forward, degrees


POSES: dict[str, PoseSpec] = {
    "stand": PoseSpec((8, 4), (8, 4), (3, 0), (3, 0), "any"),
    "walk": PoseSpec((30, 45), (-25, -10), (22, 5), (-18, -35), "profile", 4),
    "arm_raised": PoseSpec((165, 172), (10, 5), (3, 0), (3, 0), "front"),
    "reach": PoseSpec((80, 88), (10, 5), (3, 0), (3, 0), "any"),
    "carry": PoseSpec((35, 95), (30, 90), (4, 0), (-4, 0), "profile"),
    "kick": PoseSpec((-30, -20), (35, 50), (65, 85), (-8, -5), "profile", -6),
    "sit": PoseSpec((25, 70), (20, 60), (90, 5), (85, 0), "profile"),
    "ride": PoseSpec((50, 75), (45, 70), (40, -5), (35, -8), "profile", 8),
    "look": PoseSpec((5, 0), (-5, 0), (3, 0), (-3, 0), "profile"),
}


@dataclass(frozen=True)
class Body:
    """One posed figure: keypoints (17, 2) in pixels plus what drawing needs."""

    keypoints: np.ndarray  # (17, 2) float64, COCO-17 order, absolute pixels
    head: tuple[float, float, float]  # centre x, centre y, radius (pixels)
    line: float  # limb width, pixels
    height: float  # nominal standing height H, pixels
    pose: str
    view: str  # front | profile
    facing: int  # +1 right, -1 left (profile); the active side's outward sign (front)
    active: str  # "left" | "right": the side whose limbs do the action

    def box(self) -> np.ndarray:
        """Tight extent (x1, y1, x2, y2), pixels, of limbs (with their width) and head."""
        half = self.line / 2
        lo = self.keypoints.min(axis=0) - half
        hi = self.keypoints.max(axis=0) + half
        cx, cy, r = self.head
        return np.array([min(lo[0], cx - r), min(lo[1], cy - r), max(hi[0], cx + r), max(hi[1], cy + r)])

    def scaled(self, s: float) -> Body:
        """The figure scaled by ``s`` about the origin (the hip centre of an unplaced figure)."""
        cx, cy, r = self.head
        return Body(self.keypoints * s, (cx * s, cy * s, r * s), max(1.5, self.line * s), self.height * s,
                    self.pose, self.view, self.facing, self.active)

    def translated(self, dx: float, dy: float) -> Body:
        cx, cy, r = self.head
        return Body(self.keypoints + (dx, dy), (cx + dx, cy + dy, r), self.line, self.height,
                    self.pose, self.view, self.facing, self.active)


def _direction(angle_deg: float, sign: float) -> np.ndarray:
    """Unit vector of a limb at ``angle_deg`` from straight down, swung towards ``sign``·x."""
    a = np.deg2rad(angle_deg)
    return np.array([sign * np.sin(a), np.cos(a)])


def _chain(root: np.ndarray, angles: tuple[float, float], lengths: tuple[float, float],
           sign: float) -> tuple[np.ndarray, np.ndarray]:
    mid = root + lengths[0] * _direction(angles[0], sign)
    return mid, mid + lengths[1] * _direction(angles[1], sign)


def pose_body(pose: str, height: float, rng: np.random.Generator, *, view: str | None = None,
              facing: int | None = None, active: str | None = None, wobble: float = 5.0) -> Body:
    """The figure of ``pose`` with its hip centre at (0, 0), for a standing height ``height`` px.

    Limb angles get N(0, ``wobble``°) noise for variety. ``view``, ``facing`` and ``active`` are
    drawn at random when not given (``view`` only when the pose allows both).
    """
    spec = POSES[pose]
    view = view or (spec.view if spec.view != "any" else ("front", "profile")[rng.integers(2)])
    facing = int(facing if facing is not None else (-1, 1)[rng.integers(2)])
    active = active or ("left", "right")[rng.integers(2)]
    passive = "right" if active == "left" else "left"
    H = float(height)
    jit = lambda pair: (pair[0] + rng.normal(0, wobble), pair[1] + rng.normal(0, wobble))  # noqa: E731

    kp = np.zeros((17, 2))
    lean = np.deg2rad(spec.lean + rng.normal(0, wobble / 2))
    sh_c = np.array([facing * np.sin(lean), -np.cos(lean)]) * TORSO * H
    # side offsets: front view spreads left/right across x; profile view separates by depth only
    if view == "front":
        # the person faces the camera, so their left side is on the image's +x side
        side_x = {"left": 1.0, "right": -1.0}
        shoulder_off, hip_off = SHOULDER_HALF * H, HIP_HALF * H
        sign = {"left": 1.0, "right": -1.0}
        facing = int(sign[active])
    else:
        near = "right" if facing > 0 else "left"  # facing right shows the right side
        side_x = {near: -facing * 1.0, ("left" if near == "right" else "right"): facing * 1.0}
        shoulder_off = hip_off = DEPTH_HALF * H
        sign = {"left": float(facing), "right": float(facing)}
    for side, arm_angles, leg_angles in ((active, spec.arm_active, spec.leg_active),
                                         (passive, spec.arm_passive, spec.leg_passive)):
        s_i, e_i, w_i = ARM[side]
        h_i, k_i, a_i = LEG[side]
        kp[s_i] = sh_c + (side_x[side] * shoulder_off, 0.0)
        kp[h_i] = (side_x[side] * hip_off, 0.0)
        kp[e_i], kp[w_i] = _chain(kp[s_i], jit(arm_angles), (UPPER_ARM * H, FOREARM * H), sign[side])
        kp[k_i], kp[a_i] = _chain(kp[h_i], jit(leg_angles), (THIGH * H, SHIN * H), sign[side])
    head_c = sh_c + np.array([facing * np.sin(lean), -np.cos(lean)]) * (NECK + HEAD_R) * H
    _face(kp, head_c, HEAD_R * H, view, facing)
    return Body(kp, (float(head_c[0]), float(head_c[1]), HEAD_R * H), max(1.5, LINE * H), H,
                pose, view, facing, active)


def _face(kp: np.ndarray, c: np.ndarray, r: float, view: str, facing: int) -> None:
    """Nose, eyes and ears on the head circle (centre ``c``, radius ``r``)."""
    if view == "front":
        kp[0] = c + (0.0, 0.2 * r)
        kp[1], kp[2] = c + (0.4 * r, -0.15 * r), c + (-0.4 * r, -0.15 * r)
        kp[3], kp[4] = c + (0.95 * r, 0.0), c + (-0.95 * r, 0.0)
    else:
        near_eye, far_eye = (2, 1) if facing > 0 else (1, 2)
        kp[0] = c + (facing * 0.85 * r, 0.15 * r)
        kp[near_eye] = c + (facing * 0.5 * r, -0.25 * r)
        kp[far_eye] = c + (facing * 0.65 * r, -0.3 * r)
        near_ear, far_ear = (4, 3) if facing > 0 else (3, 4)
        kp[near_ear] = c + (-facing * 0.1 * r, 0.0)
        kp[far_ear] = c + (-facing * 0.05 * r, -0.05 * r)


def hidden_keypoints(body: Body) -> np.ndarray:
    """(17,) bool: keypoints a profile view cannot show (far eye and far ear)."""
    hidden = np.zeros(17, dtype=bool)
    if body.view == "profile":
        hidden[[1, 3] if body.facing > 0 else [2, 4]] = True
    return hidden
