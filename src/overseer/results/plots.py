"""What every pillar's figures share: print-ready saving (PNG at 300 dpi and a PDF twin), captions, legends.

Figures are functions of data that return a matplotlib Figure; this module only dresses and saves them,
so a notebook can call the same plotting functions and :func:`save_figure` on their result.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg", force=False)  # headless unless a notebook chose a backend already
from matplotlib.figure import Figure  # noqa: E402

from overseer._storage import atomic_file  # noqa: E402

PRINT_DPI = 300
"""Resolution of every PNG written (print quality); the PDF twin is vector."""

FORMATS = ("png", "pdf")
CHANCE_COLOR = "#9a9a9a"


def save_figure(fig: Figure, directory: str | Path, stem: str, formats: Sequence[str] = FORMATS,
                dpi: int = PRINT_DPI) -> list[Path]:
    """Write ``fig`` as ``<directory>/<stem>.png`` (``dpi``) and ``<stem>.pdf``, each atomically; return the paths.

    Each file is drawn to a per-process temporary name beside it and renamed into place, so a reader
    never sees half a figure. Everything drawn outside the axes (legends, captions) is kept.
    """
    directory = Path(directory)
    written = []
    for fmt in formats:
        path = directory / f"{stem}.{fmt}"
        # No creation date in the PDF: the same figure gives the same bytes.
        metadata = {"CreationDate": None} if fmt == "pdf" else None
        # TrueType fonts in the PDF: editable text, and what journals' checkers accept (not Type 3).
        with atomic_file(path) as tmp, matplotlib.rc_context({"pdf.fonttype": 42}):
            fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight", pad_inches=0.05, metadata=metadata)
        written.append(path)
    return written


def caption(fig: Figure, text: str, fontsize: float = 7.5) -> Any:
    """Put ``text`` under the figure, wrapped to its width (kept by :func:`save_figure`); return the Text."""
    chars_per_inch = 120 / fontsize  # a rough width of a character at this size
    width = max(30, int(fig.get_figwidth() * chars_per_inch))
    wrapped = "\n".join(textwrap.fill(part, width) for part in text.split("\n"))
    # Just below everything already drawn (tick labels, axis labels), measured rather than guessed.
    bottom = fig.get_tightbbox(fig.canvas.get_renderer()).y0 / fig.get_figheight()
    return fig.text(0.01, min(0.0, bottom) - 0.02, wrapped, ha="left", va="top", fontsize=fontsize,
                    color="#333333")


def legend_right(fig: Figure, handles: Sequence[Any], labels: Sequence[str], fontsize: float = 7.5) -> Any:
    """One legend for the whole figure, right of every axes, so it never covers data; return it."""
    return fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=fontsize,
                      frameon=False, borderaxespad=0.0)


def model_label(model: str) -> str:
    """A model as a figure names it: the folder name of a local model path, the name or hub id otherwise."""
    path = Path(model).expanduser()
    if model.startswith(("/", "./", "../", "~")) or (os.sep in model and path.exists()):
        return path.name or model
    return model
