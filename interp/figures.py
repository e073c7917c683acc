"""The one way results write a matplotlib figure: laid out, saved, and closed so figures never pile up."""

from __future__ import annotations

from pathlib import Path


def save_figure(fig, path: str | Path, dpi: int | None = None) -> Path:
    """tight_layout, save to `path` (dpi None: matplotlib's default), close; returns the path."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return Path(path)
