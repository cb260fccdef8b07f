"""JSON results for every command: plain values (NaN as null), written whole by temp-then-rename."""
import json
import math
import os
from typing import Any, Dict

import numpy as np


def jsonable(value: Any) -> Any:
    """Plain JSON values: numpy scalars become numbers, NaN/inf become null (JSON has neither)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def atomic_text(path: str, text: str) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    os.replace(tmp, path)


def write_json(path: str, data: Dict[str, Any]) -> None:
    """Indented UTF-8 JSON, replaced atomically so a reader never sees half a file."""
    atomic_text(path, json.dumps(jsonable(data), indent=2, ensure_ascii=False) + "\n")
