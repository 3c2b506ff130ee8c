"""Per-(bundle, device) cost models on disk, so calibration runs once per machine.

Layout: ``<root>/costs/<bundle_id>-<device_name>.json`` (name sanitized), root from
``$T2I_SDK_CACHE`` or ``~/.cache/t2i-sdk``. A cache is an optimisation: unreadable files load
as None and failed writes are reported, never raised.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

from t2i_sdk.budget.cost_model import CostModel

MAX_KEY_CHARS = 120  # well under the 255-byte file-name limit of common file systems


def default_cache_root() -> Path:
    """``$T2I_SDK_CACHE`` if set, else ``~/.cache/t2i-sdk``."""
    env = os.environ.get("T2I_SDK_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "t2i-sdk"


def cache_key(bundle_id: str, device_name: str) -> str:
    """File-name-safe ``f"{bundle_id}-{device_name}"``: other characters become ``_``; a long
    key is cut and suffixed with a hash of the full one so distinct keys stay distinct."""
    raw = f"{bundle_id}-{device_name}"
    key = re.sub(r"[^A-Za-z0-9._-]+", "_", raw).strip("._") or "default"
    if len(key) > MAX_KEY_CHARS:
        key = key[:MAX_KEY_CHARS - 13] + "-" + hashlib.sha256(raw.encode()).hexdigest()[:12]
    return key


class CostCache:
    """Loads and saves ``CostModel``s keyed by bundle id and device name."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_root()

    def path(self, bundle_id: str, device_name: str) -> Path:
        return self.root / "costs" / f"{cache_key(bundle_id, device_name)}.json"

    def load(self, bundle_id: str, device_name: str) -> CostModel | None:
        """The cached model, or None when absent, unreadable, corrupt or of another version."""
        try:
            data = json.loads(self.path(bundle_id, device_name).read_text(encoding="utf-8"))
            return CostModel.from_dict(data)
        except (OSError, UnicodeDecodeError, ValueError):  # JSONDecodeError is a ValueError
            return None

    def save(self, bundle_id: str, device_name: str, model: CostModel) -> bool:
        """Write atomically (temp file + ``os.replace``): readers never see half a file.

        Returns False (and leaves any previous file intact) when the cache is not writable.
        """
        path = self.path(bundle_id, device_name)
        text = json.dumps(model.to_dict(), indent=1, sort_keys=True)
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent,
                                             prefix=path.name, suffix=".tmp", delete=False) as f:
                tmp = f.name
                f.write(text)
            os.replace(tmp, path)
            return True
        except OSError:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
            return False
