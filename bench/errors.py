"""`bench.errors`, the import path the plugin guide documents; the errors live in `bench.core.errors`."""

from bench.core.errors import BenchError, ConfigError, exit_on_user_error, os_error_line

__all__ = ["BenchError", "ConfigError", "exit_on_user_error", "os_error_line"]
