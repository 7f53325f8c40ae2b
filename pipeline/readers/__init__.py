"""Readers of the on-disk dataset formats used by the ``ingest`` stage: the directory layout
(which annotation file and image folder hold each split), the annotation JSON, the image file
headers, the label mapping of each format and the per-row checks with their skip/fail policy."""
