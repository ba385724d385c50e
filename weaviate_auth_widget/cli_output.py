"""What the ``weaviate-auth`` commands print: JSON for ``--json``, aligned tables else."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

PROG = "weaviate-auth"


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def print_table(rows: Sequence[Sequence[str]]) -> None:
    """Rows of cells (the first is the header), columns padded to their widest cell."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


__all__ = ["PROG", "print_json", "print_table"]
