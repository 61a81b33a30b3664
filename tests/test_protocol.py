"""The protocol: docs/osc.md against the dispatch table, packets in and out, request binding, the client's
argument typing and output, reply routing and the allow-list. In-process and fast."""

from __future__ import annotations

import random
import re
import socket
import struct
import time

import pytest

from tad_daemon.protocol import osc
from tad_daemon.protocol.client import absolute_paths, format_reply, parse_arg
from tad_daemon.protocol.table import (
    BROADCASTS,
    PROTOCOL,
    ProtocolError,
    bind,
    broadcast_rows,
    request_rows,
)
from tests.conftest import REPO


def doc_rows(first_header: str) -> list[list[str]]:
    """The rows of the docs/osc.md table whose header row starts with `first_header`."""
    lines = (REPO / "docs" / "osc.md").read_text().splitlines()
    start = next(i for i, li in enumerate(lines) if li.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split(" | ")])
    return rows


def test_docs_tables_match_the_protocol_and_the_dispatch_table():
    from unittest.mock import Mock

    from tad_daemon.daemon.app import routes
    from tad_daemon.daemon.server import Server

    requests = doc_rows("address | arguments | options")
    assert requests == request_rows()
    assert doc_rows("address | arguments | when") == broadcast_rows()
    server = Server("127.0.0.1", 0)
    try:
        for address, _ in routes(Mock(), Mock()):  # what App maps
            server.map(address, lambda r: None)
        documented = {re.sub(r"`", "", r[0]) for r in requests}
        assert set(server.handlers) == set(PROTOCOL) == documented
    finally:
        server.close()
    with pytest.raises(ValueError, match="not in the protocol table"):
        Server.map(server, "/tad/undocumented", lambda r: None)
    assert set(BROADCASTS) >= {"/tad/sample", "/tad/model/added", "/tad/model/removed", "/tad/progress"}


def test_encode_parse_round_trip_and_types():
    data = osc.encode("/tad/done", "/tad/generate", "/a b/ç.wav", 3, 0.5)
    (msg,) = osc.parse(data)
    assert msg.address == "/tad/done" and msg.types == "ssif"
    assert msg.args == ["/tad/generate", "/a b/ç.wav", 3, 0.5]
    with pytest.raises(ValueError, match="int32"):
        osc.encode("/x", 2**31)
    with pytest.raises(TypeError):
        osc.encode("/x", b"blob")


def test_encode_shrinks_long_strings_to_fit():
    long_path = "/start/" + "x" * 3000 + "/end.wav"
    data = osc.encode("/tad/done", "/tad/vary", long_path, "kick", 1, 0.5, "/other/" + "y" * 500)
    assert len(data) <= osc.MAX_PACKET
    args = osc.parse(data)[0].args
    assert args[1].startswith("/start/") and args[1].endswith("/end.wav") and "..." in args[1]
    assert args[2:5] == ["kick", 1, 0.5]


def test_parse_never_raises_anything_but_bad_packet():
    rng = random.Random(0)
    seeds = [osc.encode("/tad/generate", "snare", 2, 5, 0, "tag=x"), osc.encode("/tad/ping"),
             b"#bundle\0" + bytes(8) + struct.pack(">i", 16) + osc.encode("/tad/ping")]
    for _ in range(3000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(data))
            data[i] = rng.randrange(256)
        data = bytes(data[: rng.randint(0, len(data))])
        try:
            for m in osc.parse(data):
                assert isinstance(m, (osc.Message, osc.BadMessage))
        except osc.BadPacket:
            pass


def test_bundles_nested_and_bounded():
    ping = osc.encode("/tad/ping")
    inner = b"#bundle\0" + bytes(8) + struct.pack(">i", len(ping)) + ping
    outer = b"#bundle\0" + bytes(8) + struct.pack(">i", len(inner)) + inner
    assert [m.address for m in osc.parse(outer)] == ["/tad/ping"]
    deep = inner
    for _ in range(osc.MAX_DEPTH):
        deep = b"#bundle\0" + bytes(8) + struct.pack(">i", len(deep)) + deep
    with pytest.raises(osc.BadPacket, match="nested"):
        osc.parse(deep)


def test_bind_fills_defaults_and_reads_options():
    gen = PROTOCOL["/tad/generate"]
    b = bind(gen, ["snare"])  # what is not given is None, once: the handlers never see the table's markers
    assert b.args == {"model": "snare", "count": 1, "seed": None, "steps": None}
    assert b.options == {"sampler": None, "post": 1, "tune": None, "vel": None, "blend": None} and b.tag is None
    assert bind(gen, ["snare", 1, -1, 0, 'sampler=', "tune="]).args == b.args  # the markers, sent: the same
    assert bind(gen, ["snare", 1, 7, 3]).args == {"model": "snare", "count": 1, "seed": 7, "steps": 3}
    b = bind(gen, ["snare", 4.0, "post=0", "tag=pad=1"])
    assert b.args["count"] == 4 and b.options["post"] == 0 and b.tag == "pad=1"
    vary = PROTOCOL["/tad/vary"]
    b = bind(vary, ["kick", "/a.wav", 1, "steps=8"])
    assert b.args["strength"] == 1.0 and isinstance(b.args["strength"], float) and b.options["steps"] == 8
    for values, message in [
        (["snare", True], "got true (T)"),
        (["snare", None], "got nil (N)"),
        (["snare", 1, 2**40], "must be between -1 and"),
        (["snare", "post=2"], "post must be between 0 and 1"),
        (["snare", "post=x"], "expected an integer"),
        (["snare", "tag=a", "tag=b"], "given twice"),
        (["snare", "tag=" + "t" * 200], "tag longer"),
        (["s" * 5000], "longer than 4096 bytes"),
    ]:
        with pytest.raises(ProtocolError, match=re.escape(message)):
            bind(gen, values)


def test_client_types_arguments_like_oscsend(tmp_path, monkeypatch):
    assert [parse_arg(a) for a in ["4", "-1", "0.5", "1e3", "snare", "nan", "inf"]] == [
        4, -1, 0.5, 1000.0, "snare", "nan", "inf"]
    assert [parse_arg(a) for a in ["s:123", "f:1", "i:7", "s:i:x", "C:\\x.wav"]] == ["123", 1.0, 7, "i:x",
                                                                                   "C:\\x.wav"]
    with pytest.raises(ValueError, match="not an integer"):
        parse_arg("i:x")
    monkeypatch.chdir(tmp_path)
    assert absolute_paths("/tad/vary", ["kick", "a.wav", 0.5]) == ["kick", str(tmp_path / "a.wav"), 0.5]
    assert absolute_paths("/tad/generate", ["kick.wav"]) == ["kick.wav"]
    msg = osc.Message("/tad/done", ["/tad/vary", "/p q/x.wav", 3, 0.30000001192092896, "a\nb"])
    assert format_reply(msg) == "/tad/done /tad/vary /p q/x.wav 3 0.3 a\\nb"
    assert format_reply(msg, as_json=True) == (
        '{"address": "/tad/done", "args": ["/tad/vary", "/p q/x.wav", 3, 0.3, "a\\nb"]}')
    assert PROTOCOL["/tad/generate"].expected_results(["snare", 3]) == 3
    assert PROTOCOL["/tad/generate"].expected_results(["snare", "tag=x"]) == 1


# -- reply routing -------------------------------------------------------------------------------------------
def listener() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(2)
    return s


def test_registrations_get_copies_and_expire_when_the_port_closes():
    from tad_daemon.daemon.log import RateLimited
    from tad_daemon.daemon.server import Refused, Replies, bind_socket, log

    sock = bind_socket("127.0.0.1", 0)
    replies = Replies(sock, RateLimited(log))
    client, registered, closed = listener(), listener(), listener()
    try:
        replies.register("127.0.0.1", registered.getsockname()[1])
        closed_port = closed.getsockname()[1]
        replies.register("127.0.0.1", closed_port)
        closed.close()
        replies.send(client.getsockname(), "/tad/done", "/tad/ping")
        assert osc.parse(client.recv(2000))[0].args == ["/tad/ping"]
        assert osc.parse(registered.recv(2000))[0].args == ["/tad/ping"]  # the copy
        for _ in range(5):  # the closed port's ICMP error surfaces on a later send
            replies.broadcast("/tad/sample", "/x.wav", "kick")
            if ("127.0.0.1", closed_port) not in list(replies._registrations):
                break
        assert list(replies._registrations) == [("127.0.0.1", registered.getsockname()[1])]
        with pytest.raises(Refused, match="own"):
            replies.register("127.0.0.1", sock.getsockname()[1])
        for port in range(40000, 40040):  # a cap: the oldest make room
            replies.register("127.0.0.2", port)
        assert len(list(replies._registrations)) == 32
    finally:
        replies.close()
        for s in (sock, client, registered):
            s.close()


def test_registrations_expire_after_their_time(monkeypatch):
    from tad_daemon.daemon import server as server_module
    from tad_daemon.daemon.log import RateLimited

    sock = server_module.bind_socket("127.0.0.1", 0)
    replies = server_module.Replies(sock, RateLimited(server_module.log))
    other = listener()
    try:
        replies.register("127.0.0.1", other.getsockname()[1])
        now = time.monotonic()
        monkeypatch.setattr(server_module.time, "monotonic", lambda: now + server_module.NOTIFY_TTL + 1)
        replies.broadcast("/tad/sample", "/x.wav", "kick")
        assert list(replies._registrations) == []
    finally:
        replies.close()
        sock.close()
        other.close()


def test_non_loopback_needs_the_option_and_an_allow_list():
    from tad_daemon.daemon.server import Server, check_listen

    assert check_listen("127.0.0.1", False, []) is None
    assert check_listen("localhost", False, []) is None
    assert "--allow-remote" in check_listen("0.0.0.0", False, ["10.0.0.1"])
    assert "server.allow" in check_listen("0.0.0.0", True, [])
    assert "not an IP address" in check_listen("0.0.0.0", True, ["nonsense"])
    assert check_listen("0.0.0.0", True, ["10.1.2.0/24"]) is None
    server = Server("0.0.0.0", 0, ["10.1.2.0/24"])
    sent = []
    server.replies.send = lambda dest, *args: sent.append(dest)
    server.map("/tad/ping", lambda r: r.done())
    try:
        ping = osc.encode("/tad/ping")
        server.handle_packet(ping, ("10.9.9.9", 5000))  # a stranger: dropped without a reply
        assert sent == []
        server.handle_packet(ping, ("10.1.2.3", 5000))
        server.handle_packet(ping, ("127.0.0.1", 5000))  # loopback is always allowed
        server.handle_packet(b"junk", ("10.9.9.9", 5000))
        assert sent == [("10.1.2.3", 5000), ("127.0.0.1", 5000)]
    finally:
        server.close()


def test_loopback_is_always_allowed_and_others_only_by_the_allow_list():
    from tad_daemon.daemon.server import Server

    server = Server("0.0.0.0", 0, allow=["127.0.0.5", "10.0.0.0/8"])
    try:  # docs/osc.md, Security: loopback is this machine, whatever server.allow says
        assert all(server._allowed(ip) for ip in ("127.0.0.5", "127.0.0.9", "127.5.6.7", "::1", "10.1.2.3"))
        assert not any(server._allowed(ip) for ip in ("192.168.1.2", "11.0.0.1", "not an address"))
    finally:
        server.close()
