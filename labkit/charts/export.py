"""A Figure as an inline image for HTML: crisp on a HiDPI screen, with alt text."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

DPI = 200  # twice the display resolution: crisp at report width on a HiDPI screen


def describe(fig: Any) -> str:
    """Alt text from the figure itself: each panel's title and what it plots against what."""
    parts = []
    for ax in fig.axes:
        title, x, y = ax.get_title(), ax.get_xlabel(), ax.get_ylabel()
        if not (title or y):
            continue  # a twin axis: its label is read with its panel
        what = f"{y} against {x}" if x and y else (y or x)
        parts.append(f"{title} ({what})" if title and what else title or what)
    return "Chart: " + "; ".join(parts) if parts else "Chart"


def figure_html(fig: Any, alt: str | None = None) -> str:
    """``<img>`` of ``fig`` as an inline PNG drawn at :data:`DPI`, shown at its natural
    size (100 px per inch), with ``alt`` (default: :func:`describe`)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    width = int(fig.get_figwidth() * 100)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    text = html.escape(alt or describe(fig), quote=True)
    return (f'<img class="labkit-chart" width="{width}" style="max-width:100%;height:auto" '
            f'alt="{text}" src="data:image/png;base64,{data}">')
