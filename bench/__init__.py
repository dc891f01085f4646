"""bench: a comparative benchmark of image generators."""

__version__ = "0.1.0"
