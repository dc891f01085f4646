"""What the tests share besides fixtures: composed configs, hand-made records, fake dataset roots,
networks and families that misbehave on purpose, throwaway plugin packages.

Imported as `tests.helpers.<module>` (fixtures stay in `tests/conftest.py`). A subprocess that names
one of these classes by dotted path (`model.net._target_=tests.helpers.numbers_nets.NaNVAENet`)
needs the repository root on `PYTHONPATH`, as `REPO_ROOT` gives it.
"""

from __future__ import annotations

from pathlib import Path

#: The repository's root folder (where `bench/`, `tests/` and `pyproject.toml` are).
REPO_ROOT = Path(__file__).resolve().parent.parent.parent
