"""The login panel's layout helpers: labelled fields, and rows aligned with them."""

from __future__ import annotations

from typing import Any

import ipywidgets as w

#: rows without a label start here, past the 110px label column and its gap
ALIGNED_MARGIN = "2px 0 2px 120px"


def aligned() -> Any:
    """Rows without a label line up with the fields, past the 110px label column."""
    return w.Layout(margin=ALIGNED_MARGIN)


def label(text: str) -> dict[str, Any]:
    """Keyword arguments of a field labelled ``text`` in the 110px label column."""
    # width auto, not 100%: the widget's own margin would push a 100% field past the panel's edge
    return {"description": text, "style": {"description_width": "110px"}, "layout": w.Layout(width="auto")}


__all__ = ["ALIGNED_MARGIN", "aligned", "label"]
