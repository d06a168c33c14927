"""The six real BigEarthNet-MM v1 example pairs shipped inside ``bigearthnet-common`` (TU Berlin).

``extract_sample(out)`` writes them in the v1 layout: ``out/BigEarthNet-v1.0/<s2_name>/…`` and
``out/BigEarthNet-S1-v1.0/<s1_name>/…``, real pixels, coordinates and labels. Pairs and splits
are then found by the reader through TU Berlin's official mapping and split lists.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from importlib import resources
from pathlib import Path

from xjepa_kit.errors import DataError

ARCHIVES = {  # archive inside the package -> (folder inside the archive, v1 folder name we use)
    "BigEarthNet-S2-Example.tar.bz2": ("BigEarthNet-S2-Example", "BigEarthNet-v1.0"),
    "BigEarthNet-S1-Example.tar.bz2": ("BigEarthNet-S1-Example", "BigEarthNet-S1-v1.0"),
}


def extract_sample(out: str | Path = "data/sample", overwrite: bool = False) -> Path:
    """Extract the six real S1/S2 example pairs into ``out`` (v1 layout); returns ``out``.

    An existing complete extraction is kept as is unless ``overwrite``; extraction goes to a
    temporary folder first and is moved into place, so an interrupted run leaves nothing half-written.
    """
    out = Path(out)
    if not overwrite and all((out / dst).is_dir() for _, dst in ARCHIVES.values()):
        return out
    out.mkdir(parents=True, exist_ok=True)
    for archive, (inner, dst) in ARCHIVES.items():
        source = resources.files("bigearthnet_common").joinpath(archive)
        if not source.is_file():
            raise DataError(f"bigearthnet-common has no {archive}: reinstall it "
                            "(`pip install --force-reinstall bigearthnet-common`)")
        with tempfile.TemporaryDirectory(dir=out, prefix=".extract-") as tmp:
            with source.open("rb") as fh, tarfile.open(fileobj=fh, mode="r:bz2") as tar:
                members = [m for m in tar.getmembers() if m.isfile() or m.isdir()]
                for m in members:
                    if m.name.startswith("/") or ".." in Path(m.name).parts:
                        raise DataError(f"{archive}: unsafe path {m.name!r} in archive")
                tar.extractall(tmp, members=members)
            target = out / dst
            if target.exists():
                shutil.rmtree(target)
            os.replace(Path(tmp) / inner, target)
    return out
