"""The Max for Live device: patch structure, OSC addresses against the protocol table, the .amxd build
round trip, and the device's JavaScript tests under Node."""

from __future__ import annotations

import importlib.util
import json
import re
import struct

import pytest

from tests.conftest import REPO, run_node

M4L = REPO / "max_for_live"
MAXPAT = M4L / "TAD Drums.maxpat"
SCRIPT = M4L / "tad_drums.js"
OSC_DOC = REPO / "docs" / "osc.md"


def _load_build():
    spec = importlib.util.spec_from_file_location("m4l_build", M4L / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _boxes() -> dict[str, dict]:
    patcher = json.loads(MAXPAT.read_text(encoding="utf-8"))["patcher"]
    return {b["box"]["id"]: b["box"] for b in patcher["boxes"]}


def _lines() -> list[tuple[str, int, str, int]]:
    patcher = json.loads(MAXPAT.read_text(encoding="utf-8"))["patcher"]
    return [(*p["patchline"]["source"], *p["patchline"]["destination"]) for p in patcher["lines"]]


def _protocol() -> tuple[set[str], set[str]]:
    """(request addresses, every address the protocol document names) from docs/osc.md."""
    text = OSC_DOC.read_text(encoding="utf-8")
    requests_part = text.split("## Requests", 1)[1].split("## Broadcasts", 1)[0]
    requests = set(re.findall(r"^\| `(/tad/[a-z/]+)` \|", requests_part, flags=re.M))
    everything = set(re.findall(r"`(/tad/[a-z/]+)", text)) | set(re.findall(r"(/tad/[a-z/]+)", text))
    return requests, everything


def _handlers() -> set[str]:
    """Messages tad_drums.js answers: its functions that are not marked local."""
    code = SCRIPT.read_text(encoding="utf-8")
    functions = set(re.findall(r"^function (\w+)\(", code, flags=re.M))
    local = set(re.findall(r"^(\w+)\.local = 1;", code, flags=re.M))
    return functions - local


def test_patchlines_join_existing_boxes_and_valid_inlets_outlets():
    boxes = _boxes()
    lines = _lines()
    assert len(boxes) == len(json.loads(MAXPAT.read_text())["patcher"]["boxes"]), "box ids must be unique"
    assert len(set(lines)) == len(lines), "duplicate patchline"
    for src, outlet, dst, inlet in lines:
        assert src in boxes and dst in boxes, f"patchline {src} -> {dst} joins a missing box"
        assert 0 <= outlet < boxes[src]["numoutlets"], f"{src} has no outlet {outlet}"
        assert 0 <= inlet < boxes[dst]["numinlets"], f"{dst} has no inlet {inlet}"


def test_js_box_matches_the_script():
    boxes = _boxes()
    code = SCRIPT.read_text(encoding="utf-8")
    js = [b for b in boxes.values() if b.get("text", "").startswith("js ")]
    assert len(js) == 1
    box = js[0]
    assert (M4L / box["text"].split()[1]).is_file()
    assert box["numinlets"] == int(re.search(r"^inlets = (\d+);", code, re.M).group(1))
    assert box["numoutlets"] == int(re.search(r"^outlets = (\d+);", code, re.M).group(1))
    used = {outlet for src, outlet, _, _ in _lines() if src == box["id"]}
    assert used == set(range(box["numoutlets"])), "every outlet of the script goes somewhere"
    # "---" makes the tag unique per device instance in Live.
    assert "---" in box["text"].split()[2]


def test_every_message_into_the_script_has_a_handler():
    boxes = _boxes()
    handlers = _handlers()
    js_id = next(i for i, b in boxes.items() if b.get("text", "").startswith("js "))
    feeding = [src for src, _, dst, _ in _lines() if dst == js_id]
    assert feeding
    for src in feeding:
        box = boxes[src]
        if box["maxclass"] == "message":
            selector = box["text"].split()[0]
        elif box.get("text", "").startswith("prepend "):
            selector = box["text"].split()[1]
        else:
            assert box.get("text", "").startswith("udpreceive"), f"unexpected input {src} into the script"
            continue
        assert selector in handlers, f"tad_drums.js has no handler for {selector!r} (from {src})"


def test_osc_addresses_are_in_the_protocol_table():
    requests, documented = _protocol()
    assert {"/tad/generate", "/tad/vary", "/tad/notify", "/tad/ping"} <= requests
    for box in _boxes().values():
        if box["maxclass"] == "message" and box.get("text", "").startswith("/"):
            assert box["text"].split()[0] in requests, f"message box sends unknown address {box['text']!r}"
    code = SCRIPT.read_text(encoding="utf-8")
    sent = set(re.findall(r"\b(?:send|request)\([^;]*?\"(/tad/[a-z/]+)\"", code))
    assert {"/tad/generate", "/tad/vary", "/tad/train", "/tad/models", "/tad/notify", "/tad/ping"} <= sent
    assert sent <= requests, f"the script sends addresses missing from docs/osc.md: {sent - requests}"
    named = set(re.findall(r"\"(/tad/[a-z/]+)\"", code))
    assert named <= documented, f"the script handles addresses missing from docs/osc.md: {named - documented}"


def test_udp_ports_match_the_protocol_defaults():
    texts = [b.get("text", "") for b in _boxes().values()]
    assert "udpsend 127.0.0.1 9310" in texts
    assert "udpreceive 9311" in texts
    assert "127.0.0.1" in OSC_DOC.read_text() and "9310" in OSC_DOC.read_text()


def test_amxd_round_trip(tmp_path):
    build = _load_build()
    path = build.build(tmp_path)
    data = path.read_bytes()
    assert data[:12] == b"ampf" + struct.pack("<I", 4) + b"iiii"
    assert data[12:16] == b"meta"
    kind, patcher = build.read_amxd(data)
    assert kind == "instrument"
    # Every device Live writes carries a "project" block whose amxdtype is the "ampf" type as a big-endian int.
    assert patcher["patcher"]["project"]["amxdtype"] == int.from_bytes(build.DEVICE_TYPES[kind], "big")
    assert patcher == json.loads(MAXPAT.read_text(encoding="utf-8"))
    assert (tmp_path / "tad_drums.js").read_bytes() == SCRIPT.read_bytes()


def test_amxd_reader_rejects_broken_files():
    build = _load_build()
    good = build.write_amxd(MAXPAT.read_text(encoding="utf-8"))
    with pytest.raises(build.AmxdError, match="claims"):
        build.read_amxd(good[:-10])
    with pytest.raises(build.AmxdError, match="frozen"):
        build.read_amxd(build._chunk(b"ampf", b"aaaa") + build._chunk(b"ptch", b"mx@c" + bytes(12)))
    with pytest.raises(build.AmxdError, match="device type"):
        build.read_amxd(build._chunk(b"ampf", b"zzzz") + build._chunk(b"ptch", b"{}\x00"))
    with pytest.raises(ValueError):
        build.write_amxd("{not json")


def test_device_javascript_under_node():
    files = sorted(str(p) for p in (M4L / "test").glob("*.test.js"))
    assert files
    result = run_node(["--test", "--test-reporter=tap", *files], timeout=300)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert re.search(r"^# fail 0$", result.stdout, re.M)


def test_tune_menu_offers_notes_the_daemon_takes_and_everything_fits_the_device():
    from tad_daemon.audio.tune import note_hz

    boxes = _boxes()
    notes = boxes["tune"]["saved_attribute_attributes"]["valueof"]["parameter_enum"]
    assert notes[0] == "off" and len(notes) == 49
    assert [round(note_hz(n), 2) for n in notes[1:4]] == [16.35, 17.32, 18.35]  # C0, C#0, D0
    assert all(note_hz(n) < 250 for n in notes[1:])
    patcher = json.loads(MAXPAT.read_text(encoding="utf-8"))["patcher"]
    width, height = patcher["devicewidth"], patcher["openrect"][3]
    for box in boxes.values():
        if box.get("presentation"):
            x, y, w, h = box["presentation_rect"]
            assert x + w <= width and y + h <= height, box["id"]


def test_parameters_keep_to_lives_rules():
    """Live keeps at most 256 values of an Int parameter (a port box as Int comes back as some other number
    when the set loads: Float with unit style Int instead), and a button is Hidden (parameter_invisible 2),
    so a click is no undo step (Ableton's Max for Live production guidelines; Cycling '74's reference)."""
    params = {b["id"]: b["saved_attribute_attributes"]["valueof"] for b in _boxes().values()
              if b.get("parameter_enable")}
    for name, p in params.items():
        if p.get("parameter_type") == 1:  # Int
            assert p["parameter_mmax"] - p["parameter_mmin"] + 1 <= 256, name
    for port, default in (("daemonport", 9310), ("replyport", 9311)):
        p = params[port]
        assert (p["parameter_type"], p["parameter_unitstyle"]) == (0, 0), port  # Float, shown as Int
        assert (p["parameter_mmin"], p["parameter_mmax"], p["parameter_initial"]) == (1024.0, 65535.0, [default])
    buttons = [b["id"] for b in _boxes().values() if b["maxclass"] == "live.text" and b.get("mode") == 0]
    assert len(buttons) >= 7
    for name in buttons:
        assert params[name]["parameter_invisible"] == 2, name
