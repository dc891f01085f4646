"""The test suite, laid out like the package: `tests/<layer>/` holds the tests of `bench/<layer>/`.

A package (not loose modules) so that every test module, `tests/conftest.py` and the helpers have one
dotted name (`tests.helpers.failing_net`, ...) in the test process and in subprocesses alike. It wins
over the top-level `tests` package torch-fidelity installs wherever the repository root comes before
site-packages on `sys.path`: `python -m pytest` from the root, pytest's rootdir insertion, and the
subprocesses the tests start with `PYTHONPATH` set to the root.
"""
