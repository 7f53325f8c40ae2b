"""Where each split of a dataset lies on disk.

HICO-DET (PPDM/QPIC layout): ``annotations/trainval_hico.json`` + ``images/train2015`` (train),
``annotations/test_hico.json`` + ``images/test2015`` (test). Every image file in the folder is a
row of the images table, annotated or not (ARCHITECTURE decision 9).

V-COCO (QPIC layout): ``annotations/trainval_vcoco.json`` (train), ``test_vcoco.json`` (test);
images in ``images/train2014`` or ``images/val2014``, the file name says which. Those folders
hold all of COCO, so only the images the JSON names are listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Format = Literal["hico-det", "v-coco"]
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp"})


@dataclass(frozen=True)
class SplitLayout:
    """One split: its annotation file and image folders, relative to the dataset root."""

    split: str  # train | test
    annotation: str  # e.g. annotations/test_hico.json
    default_dir: str  # folder of an image whose name names no other folder
    named_dirs: tuple[tuple[str, str], ...] = ()  # (substring of the file name, folder)
    list_folder: bool = True  # list every image file of default_dir, not only the JSON's

    def image_dir(self, file_name: str) -> str:
        """The folder (relative to the root) that holds ``file_name``."""
        for token, folder in self.named_dirs:
            if token in file_name:
                return folder
        return self.default_dir


_VCOCO_DIRS = (("train2014", "images/train2014"), ("val2014", "images/val2014"))

LAYOUTS: dict[str, tuple[SplitLayout, ...]] = {
    "hico-det": (
        SplitLayout("train", "annotations/trainval_hico.json", "images/train2015"),
        SplitLayout("test", "annotations/test_hico.json", "images/test2015"),
    ),
    "v-coco": (
        SplitLayout("train", "annotations/trainval_vcoco.json", "images/train2014", _VCOCO_DIRS, False),
        SplitLayout("test", "annotations/test_vcoco.json", "images/val2014", _VCOCO_DIRS, False),
    ),
}


def layouts(fmt: Format) -> tuple[SplitLayout, ...]:
    """The splits of dataset format ``fmt``, train first."""
    return LAYOUTS[fmt]
