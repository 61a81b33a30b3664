"""End to end: a real `tad-daemon serve` process on a free port, talked to over UDP (by our client, by
liblo (pyliblo3) and by `tad-daemon send`)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from tad_daemon.audio.wav import read_metadata
from tad_daemon.protocol.table import DONE, FAIL, PROTOCOL
from tests.conftest import make_model
from tests.daemon_util import FAST_ARCH, kick_and_snare, tad


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    yield from kick_and_snare(tmp_path_factory)


@pytest.fixture
def client(daemon):
    c = daemon.client()
    yield c
    c.close()


def shape_of(msg) -> str:
    """The type tags of a reply, without the command and the tag."""
    return msg.types


def check_shape(msg, address: str, tagged: bool = False) -> None:
    """A reply matches its shape in the protocol table (docs/osc.md)."""
    replies = {r.words: r for r in PROTOCOL[address].replies}
    words = f"{msg.address} {msg.args[0]}" if msg.address == DONE else msg.address
    expected = ("s" if msg.address == DONE else "") + replies[words].types() + ("s" if tagged else "")
    assert msg.types == expected, (msg, expected)


def test_ping_status_models(client):
    (ping,) = client.request("/tad/ping")
    assert (ping.address, ping.args) == (DONE, ["/tad/ping"])
    (status,) = client.request("/tad/status")
    check_shape(status, "/tad/status")
    assert status.args[2] == "cpu" and status.args[3] == 2
    listing = client.request("/tad/models")
    for m in listing:
        check_shape(m, "/tad/models")
    assert [m.args[2] for m in listing[:-1]] == ["kick", "snare"]
    assert [m.args[3] for m in listing[:-1]] == ["kick", "snare"]
    assert listing[-1].args == ["/tad/models", 2]
    assert client.quiet() == []


def test_generate_writes_the_files_its_replies_name(client, daemon):
    replies = client.request("/tad/generate", "snare", 3, 5)
    assert len(replies) == 3 and all(r.address == DONE for r in replies)
    for i, r in enumerate(replies):
        check_shape(r, "/tad/generate")
        _, path, model, seed, steps, sampler, pool, tuning = r.args
        assert (model, seed, steps, sampler, pool, tuning) == ("snare", 5 + i, 2, "dpmpp-2m", 0, "")
        assert os.path.isabs(path) and path.startswith(str(daemon.home / "samples" / "snare"))
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (44100, 2, 32768, "PCM_24")
        assert read_metadata(path)["seed"] == 5 + i
    # The same seed makes the same sound again.
    (again,) = client.request("/tad/generate", "snare", 1, 6)
    np.testing.assert_allclose(sf.read(again.args[1])[0], sf.read(replies[1].args[1])[0], atol=1e-4)


def test_vary_from_any_sound_file(client, tmp_path):
    src = tmp_path / "source.flac"
    sf.write(src, 0.5 * np.sin(np.linspace(0, 2000, 20000)), 48000)  # mono, 48 kHz
    replies = client.request("/tad/vary", "kick", str(src), 0.4, 2, 7, "tag=pad 3")
    assert len(replies) == 2
    for i, r in enumerate(replies):
        check_shape(r, "/tad/vary", tagged=True)
        _, path, model, seed, strength, source, tuning, tag = r.args
        assert (model, seed, source, tag) == ("kick", 7 + i, str(src), "pad 3")
        assert strength == pytest.approx(0.4)
        meta = read_metadata(path)
        assert meta["strength"] == pytest.approx(0.4) and "_var_" in path


def test_options_and_tag(client):
    (r,) = client.request("/tad/generate", "kick", 1, 3, 0, "sampler=vsampler", "post=0", "tag=b1")
    assert r.args[5] == "vsampler" and r.args[-1] == "b1"
    assert read_metadata(r.args[1])["post"] == {"clicks": False, "floor": False, "dc": False, "tail": "off",
                                                     "normalize": "off"}
    # Max sends integral floats for ints.
    (r,) = client.request("/tad/generate", "kick", 1.0, 9.0)
    assert r.address == DONE and r.args[3] == 9
    (r,) = client.request("/tad/generate", "kick", 1, -1, 0, "colour=red", "tag=b2")
    assert r.address == FAIL and "unknown option 'colour'" in r.args[1] and r.args[-1] == "b2"


BAD = [
    (("/tad/generate", 5), "model: expected a string"),
    (("/tad/ping", 1), "too many arguments"),
    (("/tad/vary", "kick"), "missing argument s:source_path"),
    (("/tad/vary", "kick", "/x.wav", float("nan")), "finite"),
    (("/tad/vary", "kick", "/x.wav", float("inf")), "finite"),
    (("/tad/vary", "kick", "/x.wav", 1.5), "strength must be between 0 and 1"),
    (("/tad/generate", "kick", 10**6), "count must be between 1 and 64"),
    (("/tad/generate", "kick", 0), "count must be at least 1"),
    (("/tad/generate", "kick", 1, -7), "seed must be between -1"),
    (("/tad/generate", "kick", 2.5), "expected an integer"),
    (("/tad/generate", "nope"), "unknown model 'nope'"),
    (("/tad/generate", "../../evil"), "invalid model name"),
    (("/tad/generate", "con"), "reserved"),
    (("/tad/generate", "a/b"), "invalid model name"),
    (("/tad/generate", "kick", 1, -1, 0, "sampler=magic"), "unknown sampler"),
    (("/tad/vary", "kick", "relative/x.wav", 0.5), "absolute path"),
    (("/tad/vary", "kick", "/nonexistent/x.wav", 0.5), "no such file"),
    (("/tad/vary", "kick", "/", 0.5), "is a folder"),
    (("/tad/notify", 1, 70000), "port must be between 0 and 65535"),
    (("/tad/nope",), "unknown address"),
    (("/tad/train", "name", "/nonexistent-dataset"), "no such folder"),
    (("/tad/train", "name", "relative/kicks"), "absolute path"),
    (("/tad/train", "../evil", "/nonexistent-dataset"), "invalid model name"),
    (("/tad/train", "name", "/nonexistent-dataset", "", 10**7), "steps must be between 0 and 1000000"),
    (("/tad/cancel", "job"), "unknown job 'job'"),
]


@pytest.mark.parametrize("request_, reason", BAD, ids=[str(b[0][:2]) for b in BAD])
def test_bad_requests_get_one_fail_with_the_reason(client, request_, reason):
    replies = client.request(*request_)
    assert len(replies) == 1
    (r,) = replies
    assert r.address == FAIL and r.args[0] == request_[0] and reason in r.args[1], r.args
    assert client.quiet(0.1) == []


RAW_BAD = [
    (b"hello", "/unknown", "not an OSC message"),
    (b"", "/unknown", "not an OSC message"),
    (b"/tad/generate\0\0\0,s\0\0\xff\xfe\0\0", "/tad/generate", "UTF-8"),
    (b"/tad/ping\0\0\0,x\0\0", "/tad/ping", "unsupported argument type"),
    (b"/tad/generate\0\0\0,b\0\0\0\0\0\x02ab\0\0", "/tad/generate", "a blob"),
    (b"/tad/generate\0\0\0,T\0\0", "/tad/generate", "true (T)"),
    (b"/tad/generate\0\0\0,i\0\0\0\0", "/tad/generate", "malformed"),
    (b"#bundle\0" + bytes(8) + (9).to_bytes(4, "big") + b"/tad/ping", "/unknown", "bundle"),
]


@pytest.mark.parametrize("packet, command, reason", RAW_BAD)
def test_packets_that_are_not_valid_osc(client, packet, command, reason):
    client.send_raw(packet)
    r = client.receive(10)
    assert r.address == FAIL and r.args[:1] == [command] and reason in r.args[1], r.args
    assert client.quiet(0.1) == []


def test_bundles_are_answered_message_by_message(client):
    from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
    from pythonosc.osc_message_builder import OscMessageBuilder

    bundle = OscBundleBuilder(IMMEDIATELY)
    for address in ("/tad/ping", "/tad/status"):
        bundle.add_content(OscMessageBuilder(address).build())
    client.send_raw(bundle.build().dgram)
    got = client.until(lambda g: len(g) == 2, 10)
    assert sorted(m.args[0] for m in got) == ["/tad/ping", "/tad/status"]


def test_a_long_reply_still_fits_one_packet(client):
    path = "/nonexistent/" + "/".join(["d" * 200] * 7) + "/end.wav"  # 1,430 bytes
    (r,) = client.request("/tad/vary", "kick", path, 0.2, 1, 1, "tag=t")
    assert r.address == FAIL and r.args[1].startswith("no such file: /nonexistent/") and "..." in r.args[1]
    assert r.args[1].endswith("/end.wav") and r.args[-1] == "t" and len(client.raw[-1]) < 1400


def test_notify_copies_replies_and_broadcasts(daemon, client):
    listener = daemon.client()  # Max: [udpsend] from one port, [udpreceive PORT] on another
    try:
        (r,) = client.request("/tad/notify", 1, listener.port)
        assert r.args == ["/tad/notify", 1, listener.port]
        (done,) = client.request("/tad/generate", "kick", 1, 11)
        seen = listener.until(lambda g: any(m.address == "/tad/sample" for m in g)
                              and any(m.args[0] == "/tad/generate" for m in g), 30)
        copy = next(m for m in seen if m.address == DONE and m.args[0] == "/tad/generate")
        sample = next(m for m in seen if m.address == "/tad/sample")
        assert copy.args == done.args and sample.args == [done.args[1], "kick"]
        (r,) = client.request("/tad/notify", 0, listener.port)
        assert r.args == ["/tad/notify", 0, listener.port]
        client.request("/tad/ping")
        assert [m for m in listener.quiet(0.3) if m.address == DONE and m.args[0] == "/tad/ping"] == []
    finally:
        listener.close()


def test_models_folder_is_watched(daemon, client):
    listener = daemon.client()
    folder = daemon.home / "models"
    try:
        listener.request("/tad/notify", 1)  # port 0: the port the request came from
        # Ignored: hidden files, partial files, broken files.
        (folder / ".hidden.safetensors").write_bytes(b"x")
        (folder / "x.safetensors.part").write_bytes(b"x")
        (folder / "broken.safetensors").write_bytes(b"\0" * 64)
        # A model file copied in slowly is not used until it is complete.
        staged = make_model(daemon.home / "staging", "hat", kind="hat", arch=FAST_ARCH)
        data = staged.read_bytes()
        with open(folder / "hat.safetensors", "wb") as f:
            f.write(data[: len(data) // 2])
            f.flush()
            time.sleep(1.5)  # longer than the watcher's quiet time: it looks at the half file
            names = [m.args[2] for m in client.request("/tad/models")[:-1]]
            assert "hat" not in names
            f.write(data[len(data) // 2:])
        added = listener.until(lambda g: any(m.address == "/tad/model/added" for m in g), 60)
        assert [m.args for m in added if m.address == "/tad/model/added"] == [["hat", "hat"]]
        (r,) = client.request("/tad/generate", "hat", 1, 1)
        assert r.address == DONE
        # Preallocated and written slowly (rsync --preallocate): size and header are whole from the start,
        # the weights zeros until written; it is loaded once it has stopped changing, never before.
        staged = make_model(daemon.home / "staging", "tom", kind="perc", arch=FAST_ARCH)
        data = staged.read_bytes()
        chunk = len(data) // 4 + 1
        with open(folder / "tom.safetensors", "wb") as f:
            f.write(data[:chunk] + b"\0" * (len(data) - chunk))
            f.flush()
            for i in range(1, 4):
                time.sleep(0.8)
                f.seek(i * chunk)
                f.write(data[i * chunk:(i + 1) * chunk])
                f.flush()
                early = [m for m in listener.quiet(0.01) if m.address == "/tad/model/added"]
                assert early == [], f"loaded after {i} of 4 parts"
        added = listener.until(lambda g: any(m.address == "/tad/model/added" for m in g), 60)
        assert [m.args for m in added if m.address == "/tad/model/added"] == [["tom", "perc"]]
        (folder / "tom.safetensors").unlink()
        listener.until(lambda g: any(m.address == "/tad/model/removed" for m in g), 60)
        # Replaced: reloaded.
        make_model(daemon.home / "staging", "hat", kind="perc", seed=5, arch=FAST_ARCH)
        os.replace(daemon.home / "staging" / "hat.safetensors", folder / "hat.safetensors")
        added = listener.until(lambda g: any(m.address == "/tad/model/added" for m in g), 60)
        assert [m.args for m in added if m.address == "/tad/model/added"] == [["hat", "perc"]]
        # Removed: dropped.
        (folder / "hat.safetensors").unlink()
        gone = listener.until(lambda g: any(m.address == "/tad/model/removed" for m in g), 60)
        assert [m.args for m in gone if m.address == "/tad/model/removed"] == [["hat"]]
        (r,) = client.request("/tad/generate", "hat")
        assert r.address == FAIL and "unknown model 'hat'" in r.args[1]
        names = [m.args[2] for m in client.request("/tad/models")[:-1]]
        assert names == ["kick", "snare"]
    finally:
        listener.request("/tad/notify", 0)
        listener.close()
        for name in (".hidden.safetensors", "x.safetensors.part", "broken.safetensors"):
            (folder / name).unlink(missing_ok=True)


def test_liblo_client(daemon):
    """An OSC implementation we did not write (liblo, through pyliblo3): requests sent from a throwaway port
    (like Max's [udpsend]), replies read on the port registered with /tad/notify (like [udpreceive])."""
    import pyliblo3 as liblo

    from tests.daemon_util import free_port

    port = free_port()
    server = liblo.Server(port, liblo.UDP)
    seen: list[tuple[str, list]] = []
    server.add_method(None, None, lambda path, args: seen.append((path, list(args))))

    def osc_send(address: str, *args) -> None:
        liblo.send(liblo.Address("localhost", daemon.port, liblo.UDP), address, *args)

    def received(address: str, about: str, timeout: float = 30) -> list:
        """The first message to `address` whose first argument is `about`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for path, args in seen:
                if path == address and args[:1] == [about]:
                    return args
            server.recv(100)
        raise AssertionError(f"no {address} among {seen!r}")

    try:
        osc_send("/tad/notify", 1, port)
        osc_send("/tad/generate", "snare", 1, 21, 0)
        done = received("/tad/done", "/tad/generate")
        assert sf.info(done[1]).frames == 32768 and "_snare_s21" in done[1]
        assert received("/tad/sample", done[1])[1] == "snare"  # the broadcast to every registered port
        osc_send("/tad/generate", "snare", ("f", 1.5))  # a float that is not an integer
        assert "expected an integer" in received("/tad/fail", "/tad/generate")[1]
        osc_send("/tad/notify", 0, port)
    finally:
        server.free()


def test_send_command(daemon, tmp_path):
    port = str(daemon.port)
    out = tad(daemon.home, "send", "/tad/ping", "--port", port)
    assert (out.returncode, out.stdout) == (0, "/tad/done /tad/ping\n")
    out = tad(daemon.home, "send", "/tad/generate", "snare", "2", "-1", "--json", "--port", port)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(li) for li in out.stdout.splitlines()]
    assert len(lines) == 2 and all(li["address"] == DONE and li["args"][0] == "/tad/generate" for li in lines)
    # Relative paths are made absolute; the plain output is address and arguments separated by spaces.
    sf.write(tmp_path / "src.wav", np.zeros((5000, 2)), 22050)
    out = tad(daemon.home, "send", "/tad/vary", "kick", "src.wav", "0.3", "--port", port, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    words = out.stdout.split()
    assert words[:2] == ["/tad/done", "/tad/vary"] and words[-1] == str(tmp_path / "src.wav")
    assert words[5] == "0.3"  # floats print with 7 significant digits
    out = tad(daemon.home, "send", "/tad/generate", "snare", "s:2", "--port", port)
    assert out.returncode == 1 and "count: expected an integer (i), got a string" in out.stdout
    out = tad(daemon.home, "send", "/tad/generate", "nope", "--json", "--port", port)
    failed = json.loads(out.stdout)
    assert out.returncode == 1 and failed["address"] == "/tad/fail"
    assert failed["args"][:2] == ["/tad/generate", "unknown model 'nope' (loaded: kick, snare)"]
    out = tad(daemon.home, "send", "/tad/generate", "snare", "100000", "--port", port)
    assert out.returncode == 1 and "generate.max_count" in out.stdout
    log = daemon.output()  # every /tad/fail is logged with its reason
    assert "/tad/generate from 127.0.0.1:" in log and "failed: unknown model 'nope'" in log
    assert "failed: count must be between 1 and" in log
    out = tad(daemon.home, "send", "/tad/ping", "--timeout", "-1", "--port", port)
    assert out.returncode == 2
    out = tad(daemon.home, "send", "tad/ping", "--port", port)
    assert out.returncode == 2 and "starts with '/'" in out.stderr
    out = tad(daemon.home, "status", "--port", port)
    assert out.returncode == 0 and "models:   2 (kick, snare)" in out.stdout
    assert re.search(r"\n    kick: (torch|onnx) (fp32|bf16)", out.stdout), out.stdout  # how it runs, and why


def test_send_without_a_daemon_and_without_torch(tmp_path):
    from tests.daemon_util import free_port

    code = ("import sys, runpy; sys.argv = ['tad-daemon', 'send', '/tad/ping', '--port', sys.argv[1]];"
            "import tad_daemon.cli as c\n"
            "try:\n    c.main()\nexcept SystemExit as e:\n"
            "    assert not [m for m in sys.modules if m.split('.')[0] == 'torch'], 'torch imported'\n"
            "    raise")
    from tests.daemon_util import tad_env

    out = subprocess.run([sys.executable, "-c", code, str(free_port())], capture_output=True, text=True,
                         env=tad_env(tmp_path), timeout=60)
    assert out.returncode == 3 and out.stderr.startswith("Error: no tad-daemon is listening"), out.stderr
    for command in ("status", "jobs"):  # one style for every command's errors
        out = tad(tmp_path, command, "--port", str(free_port()))
        assert out.returncode == 3 and out.stderr.startswith("Error: no tad-daemon is listening"), out.stderr
    timed = subprocess.run([sys.executable, "-X", "importtime", "-m", "tad_daemon", "send", "/tad/ping", "--port",
                            str(free_port())], capture_output=True, text=True, env=tad_env(tmp_path), timeout=60)
    imported = [li.split("|")[-1].strip() for li in timed.stderr.splitlines() if "|" in li]
    assert "tad_daemon.protocol.client" in imported and "torch" not in imported and "numpy" not in imported
