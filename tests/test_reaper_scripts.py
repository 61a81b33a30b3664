"""The REAPER scripts: their busted-style specs (against a stand-in `reaper` table and a stand-in client), and
the ReaPack index."""

from __future__ import annotations

import importlib.util
import os
import re
import xml.etree.ElementTree as ET
from urllib.parse import unquote

import pytest

from tests.conftest import REPO, run_lua_specs

SCRIPTS = REPO / "reaper_scripts"


def _make_index():
    spec = importlib.util.spec_from_file_location("make_index", SCRIPTS / "make_index.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(os.name == "nt", reason="the stand-in REAPER drives a POSIX shell")
@pytest.mark.parametrize("lua", ["5.3", "5.4"])  # REAPER 6 embeds Lua 5.3, REAPER 7 Lua 5.4
def test_lua_specs(lua):
    result = run_lua_specs(SCRIPTS / "spec", lua)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]
    m = re.search(r"(\d+) successes? / (\d+) failures? / (\d+) errors?", out)
    assert m and int(m.group(1)) >= 20 and m.group(2) == "0" and m.group(3) == "0", out[-3000:]


def test_reapack_index_lists_every_script_and_is_current():
    make_index = _make_index()
    text = (SCRIPTS / "index.xml").read_text(encoding="utf-8")
    assert text == make_index.render(), "index.xml is stale: run python reaper_scripts/make_index.py"
    root = ET.fromstring(text)
    assert root.tag == "index" and root.get("version") == "1"
    package = root.find("category/reapack")
    assert package.get("type") == "script"
    # The About pane reads <metadata><description> alone, as RTF: the @about text, its heading bold.
    about = package.find("metadata/description").text
    assert about.startswith("{\\rtf1") and about.endswith("}") and "{\\b tad-daemon for REAPER}" in about
    assert "velocity layers at the edit cursor" in about and "`" not in about
    version = package.find("version")
    assert re.fullmatch(r"\d+\.\d+\.\d+", version.get("name"))
    installed = {}
    for source in version.findall("source"):
        name = source.get("file") or package.get("name")
        assert unquote(source.text.rsplit("/", 1)[1]) == name
        installed[name] = source.get("main")
    actions = {p.name for p in SCRIPTS.glob("tad-daemon_*.lua")}
    assert {n for n, main in installed.items() if main == "main"} == actions
    assert installed.get("tad_common.lua", "missing") is None  # a library, not an action
    for name in installed:
        assert (SCRIPTS / name).is_file(), name
    # Only the package file carries the metadata; the others are left out of reapack-index scans.
    for path in SCRIPTS.glob("*.lua"):
        head = path.read_text(encoding="utf-8").splitlines()[0]
        assert head == ("-- @description " + package.get("desc") if path == make_index.PACKAGE else "-- @noindex")


def test_docs_name_the_index_base_address():
    daw = (REPO / "docs" / "daw.md").read_text(encoding="utf-8")
    assert f"`{_make_index().BASE_URL}`" in daw  # what the shipped index.xml downloads from, said where users read


def test_make_index_with_another_base_url(tmp_path):
    make_index = _make_index()
    out = tmp_path / "index.xml"
    assert make_index.main(["--base-url", "file:///home/me/tad daemon/reaper_scripts", "--out", str(out)]) == 0
    root = ET.parse(out).getroot()
    urls = [s.text for s in root.iter("source")]
    assert all(u.startswith("file:///home/me/tad daemon/reaper_scripts/") for u in urls)
