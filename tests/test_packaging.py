"""Issue 11: the wheel ships a py.typed marker and a LICENSE that matches the metadata."""

import pathlib
import re
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_license_file_matches_the_metadata():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^license = \{ text = "MIT" \}$', pyproject, re.M)
    license_text = (ROOT / "LICENSE").read_text()
    assert license_text.startswith("MIT License\n") and "Permission is hereby granted, free of charge" in license_text


def test_the_package_is_marked_typed():
    assert (ROOT / "src" / "rnnkern" / "py.typed").is_file()


def test_the_wheel_ships_the_marker_and_the_license(tmp_path):
    """Built with hatchling where it is installed (it is the build backend, not a test dependency)."""
    backend = pytest.importorskip("hatchling.build")
    import os

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        wheel = tmp_path / backend.build_wheel(str(tmp_path))
    finally:
        os.chdir(cwd)
    names = zipfile.ZipFile(wheel).namelist()
    assert "rnnkern/py.typed" in names and "rnnkern/__main__.py" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
