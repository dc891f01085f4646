"""Hydra finds this module by scanning the `hydra_plugins` namespace package (no `__init__.py` there)."""
