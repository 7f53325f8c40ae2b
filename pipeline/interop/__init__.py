"""Real-data interoperability: checking a user's dataset directory (``verify``), downloading the
files that have stable public sources (``fetch``), building the PPDM/QPIC annotation files the
pipeline ingests from the official HICO-DET and V-COCO releases (``hico_convert``,
``vcoco_build``), and moving predictions between our ``predictions`` table and the official
evaluation inputs or other methods' result files (``export_hico``, ``vcoco_pickle``,
``import_preds``)."""
