"""``python -m pipeline.ablations RUN PROCESSED``: one run, launched by
:func:`pipeline.ablations.launch` in its own process."""

import sys
from pathlib import Path

from pipeline.ablations import train_and_evaluate

train_and_evaluate(Path(sys.argv[1]), Path(sys.argv[2]))
