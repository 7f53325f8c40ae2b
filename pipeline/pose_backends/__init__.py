"""Pose backends of the ``pose`` stage: each turns one source of person detections (YOLO pose
inference, AlphaPose or COCO result files, the authors' part-box pickles) into rows of the
``persons`` table through :mod:`pipeline.pose_backends.persons`."""
