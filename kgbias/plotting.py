"""One plotting style, and deterministic, atomic saving of figures and tables.

Figures are written as PNG (byte-identical across runs on one machine) and PDF (with no creation
date, so also reproducible); tables as CSV and LaTeX. :func:`savefig` and :func:`save_table`
return short sha256 digests of what they wrote, which notebooks show so that nbval notices a
changed figure (nbval itself never compares images).
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from .runs import atomic_write

STYLE = {"figure.dpi": 100, "savefig.dpi": 150, "font.size": 10, "axes.titlesize": 11,
         "figure.figsize": (6.0, 4.0), "svg.hashsalt": "kgbias"}


def set_style() -> None:
    """The kgbias look: seaborn's white grid, colour-blind safe palette."""
    sns.set_theme(style="whitegrid", palette="colorblind")
    plt.rcParams.update(STYLE)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def savefig(fig, stem: str, figures_dir: str | Path) -> dict[str, str]:
    """Save ``fig`` as ``<figures_dir>/<stem>.png`` and ``.pdf``; return ``{file name: digest}``."""
    figures_dir = Path(figures_dir)
    digests = {}
    for suffix, extra in ((".png", {"metadata": {"Software": None}}),
                          (".pdf", {"metadata": {"CreationDate": None, "ModDate": None, "Producer": None,
                                                 "Creator": None}})):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=suffix[1:], bbox_inches="tight", **extra)
        data = buffer.getvalue()
        atomic_write(figures_dir / f"{stem}{suffix}", lambda f, data=data: f.write(data))
        digests[f"{stem}{suffix}"] = _digest(data)
    return digests


def save_table(frame: pd.DataFrame, stem: str, figures_dir: str | Path, float_format: str = "%.3f",
               index: bool = False) -> dict[str, str]:
    """Save a table as ``<stem>.csv`` and ``<stem>.tex``; return ``{file name: digest}``."""
    figures_dir = Path(figures_dir)
    outputs = {
        f"{stem}.csv": frame.to_csv(index=index, float_format=float_format).encode(),
        f"{stem}.tex": frame.to_latex(index=index, float_format=float_format.__mod__).encode(),
    }
    for name, data in outputs.items():
        atomic_write(figures_dir / name, lambda f, data=data: f.write(data))
    return {name: _digest(data) for name, data in outputs.items()}
