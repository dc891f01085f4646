"""The test split made unreadable: reading `test_images` or `test_labels` of any `ImageDataModule` raises.

`seal()` patches the class in this process; `sealed_site(folder)` writes a `sitecustomize.py` that
does the same in every Python process started with `folder` on `PYTHONPATH` (a sweep's workers).
"""

from __future__ import annotations

from pathlib import Path

SEALED = ("test_images", "test_labels")


class TestSplitRead(RuntimeError):
    """The test split was read where only the training and validation splits may be."""

    __test__ = False  # not a test class, whatever its name


def seal(cls=None) -> None:
    if cls is None:
        from bench.data.datamodule import ImageDataModule as cls
    for name in SEALED:

        def get(self, name=name):
            raise TestSplitRead(f"{name} was read: tuning may use the training and validation splits only")

        def put(self, value, name=name):
            self.__dict__[f"_sealed_{name}"] = value

        setattr(cls, name, property(get, put))


def sealed_site(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(
        "from tests.helpers.sealed_test_split import seal\nseal()\n", encoding="utf-8"
    )
    return folder
