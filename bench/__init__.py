"""bench: a comparative benchmark of image generators.

The package is layered, lowest first: `core` (errors, atomic writes, the metric schema, the record
store) → `config` → `data` → `models` → `run` (training machinery) → `evaluate` → `pipeline` (one
run end to end) → `report` and `testing` → `cli` (the console scripts). A module imports only from
the layers before it; `lint-imports` checks it, and docs/architecture.md says where things live.
"""

__version__ = "0.1.0"
