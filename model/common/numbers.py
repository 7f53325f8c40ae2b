"""One rounding rule for every number a command prints: metrics (AP, F1, mAP: fractions in
[0, 1]) as percentage points with two decimals, as papers report them; other values with four
significant digits; a table column with the same number of decimals in every row."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def points(value: float) -> str:
    """A metric fraction as percentage points, two decimals: 0.000502 -> '0.05', 0.6023 -> '60.23'."""
    return "nan" if value is None or not math.isfinite(value) else f"{100 * value:.2f}"


def sig(value: float, digits: int = 4) -> str:
    """``value`` with ``digits`` significant digits, no exponent for |value| in [1e-4, 1e6)."""
    if value is None or not math.isfinite(value):
        return "nan"
    return f"{value:.{digits}g}" if value == 0 or 1e-4 <= abs(value) < 1e6 else f"{value:.{digits - 1}e}"


def column_decimals(values: pd.Series, digits: int = 4, most: int = 4) -> int:
    """Decimals that give the column's largest magnitude ``digits`` significant digits (at most
    ``most``), so that every row of a printed column has the same number of decimals."""
    finite = np.abs(values.to_numpy(np.float64))
    finite = finite[np.isfinite(finite) & (finite > 0)]
    if not finite.size:
        return 0
    return int(min(most, max(0, digits - 1 - math.floor(math.log10(finite.max())))))
