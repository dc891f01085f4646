"""Build an object a config names by `_target_` (a logger, a callback), or say in one line why not."""

from __future__ import annotations

from typing import Any

from hydra.utils import instantiate

from bench.core.errors import BenchError


def build_target(config: Any, key: str, expected: type, /, **run_values: Any) -> Any:
    """`config`'s `_target_` built with its keys, then called with `run_values` (which are passed as
    data, never instantiated: the run's own config, passed to a logger as `config`, names networks). `key` names the config section
    in the message when the class cannot be built or is not an `expected`."""
    target = config.get("_target_")
    try:
        built = instantiate(config, _partial_=True)(**run_values)
    except Exception as err:  # a class that does not exist or does not take these keys: the config's mistake
        cause = err.__cause__ or err
        first = str(cause).splitlines()[0] if str(cause) else ""
        raise BenchError(f"{key}._target_={target}: could not build it ({type(cause).__name__}: {first})") from None
    if not isinstance(built, expected):
        raise BenchError(
            f"{key}._target_={target}: expected a {expected.__module__.split('.')[0]} {expected.__name__} class"
        )
    return built
