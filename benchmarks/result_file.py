"""What every benchmark script records about the machine, and how it writes its result file."""

from __future__ import annotations

import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path


def machine(**extra) -> dict:
    """When and where a measurement starts (load average included: it is the noise)."""
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "cpu_count": os.cpu_count(),
        **extra,
        "load_average_at_start": os.getloadavg(),
    }


def write(result: dict, path: Path) -> None:
    """Add the load average at the end, write `result` as JSON at `path`, and say where."""
    result["load_average_at_end"] = os.getloadavg()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    print(f"written: {path}")
