"""The one JSON writer: plain values (numpy as numbers, NaN and inf as null), written whole."""
import json
import math
from typing import Any, Optional

import numpy as np

from clipvid.atomic import write_text


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


def json_text(data: Any, indent: Optional[int] = 2, sort_keys: bool = False) -> str:
    """What write_json writes (UTF-8 text, never NaN: a strict reader accepts it)."""
    return json.dumps(jsonable(data), indent=indent, ensure_ascii=False, allow_nan=False, sort_keys=sort_keys) + "\n"


def write_json(path: str, data: Any, indent: Optional[int] = 2, sort_keys: bool = False) -> None:
    """UTF-8 JSON (indented unless indent=None, for long lists), replaced atomically so a reader never
    sees half a file."""
    write_text(path, json_text(data, indent=indent, sort_keys=sort_keys))
