"""A checkpoint's JSON files (config, tokenizer, adapter config, shard index), read with an
error that names the file when it is not a JSON object."""
from __future__ import annotations

import json
from pathlib import Path


def read_json_object(path: Path) -> dict:
    """The JSON object in ``path``; ValueError naming ``path`` if it is unreadable text, not
    JSON, or JSON but not an object."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data
