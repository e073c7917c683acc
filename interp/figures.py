"""How results make and write matplotlib figures.

Figures are built as plain `matplotlib.figure.Figure` objects, never through pyplot's global state and
never by switching the backend: a notebook shows them inline (``result.figures()["heatmap"]``), a script
saves them (`save_figure`), and none of them piles up in pyplot's list of open figures.
"""

from __future__ import annotations

from pathlib import Path


def new_figure(figsize: tuple[float, float], dpi: int = 110, **subplots):
    """(figure, axes) like ``plt.subplots(**subplots, figsize=figsize, dpi=dpi)``, without pyplot."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi)
    return fig, fig.subplots(**subplots)


def finish_logit_lens_axes(ax, ylabel: str) -> None:
    """The logit-lens plot's axes, one look for every result that draws one: layers across, a probability up."""
    ax.set_xlabel("layer (residual stream after it)")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")


def save_figure(fig, path: str | Path, dpi: int | None = None) -> Path:
    """tight_layout, save to `path` (dpi None: the figure's own), close it if pyplot manages it."""
    fig.tight_layout()
    fig.savefig(path, dpi=dpi if dpi is not None else "figure")
    if getattr(fig.canvas, "manager", None) is not None:  # made by pyplot: release it
        import matplotlib.pyplot as plt

        plt.close(fig)
    return Path(path)
