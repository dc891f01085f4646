"""Developer sessions: `nox -s tests`, `nox -s slow`, `nox -s lint`, `nox -s compare`."""

import nox

nox.options.sessions = ["tests"]


@nox.session
def tests(session: nox.Session) -> None:
    """The fast suite (the README's test command, in a fresh virtualenv)."""
    session.install("-e", ".[dev]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def slow(session: nox.Session) -> None:
    """Regression tests that train each family under a fixed samples-seen budget."""
    session.install("-e", ".[dev]")
    session.run("python", "-m", "pytest", "-m", "slow", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (lint and format) and the import-linter contracts (layers, no cycles)."""
    session.install("-e", ".[dev]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("lint-imports")


@nox.session
def compare(session: nox.Session) -> None:
    """The main job: the four families x 3 seeds on digits, then the report."""
    session.install("-e", ".[dev]")
    session.run("bench-compare", *session.posargs)
