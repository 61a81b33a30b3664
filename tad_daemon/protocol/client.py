"""The `tad-daemon send` client: send one request, print its replies, exit 0 (all done), 1 (a /tad/fail),
3 (no reply). No torch here: REAPER starts this for every action, so it must start fast.

Output, one reply per line: the address and arguments separated by a space, floats with 7 significant digits,
control characters in strings written as `\\n`, `\\t`, `\\r`; with `json=True` one JSON object per line:
{"address": ..., "args": [...]} (for paths with spaces).
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Callable

from tad_daemon.protocol import osc
from tad_daemon.protocol.table import DONE, FAIL, PROTOCOL, UNKNOWN

OK, FAILED, USAGE, NO_REPLY = 0, 1, 2, 3

_INT = re.compile(r"[+-]?\d+")  # fullmatch only
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?")


class UsageError(ValueError):
    pass


def parse_arg(text: str) -> int | float | str:
    """Like oscsend: an int if it reads as one, then a float, else a string. `i:`, `f:`, `s:` force a type
    (`s:123` is the string "123", `s:i:x` the string "i:x")."""
    kind, _, rest = text.partition(":")
    if kind in ("i", "f", "s") and _:
        try:
            return {"i": int, "f": float, "s": str}[kind](rest)
        except ValueError:
            raise UsageError(f"{text!r}: not {'an integer' if kind == 'i' else 'a number'}") from None
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return text


def absolute_paths(address: str, args: list) -> list:
    """Path arguments (per the protocol table) made absolute: the daemon does not share our folder."""
    cmd = PROTOCOL.get(address)
    if cmd is None:
        return args
    out = list(args)
    for i, arg in enumerate(cmd.args[:len(out)]):
        if arg.path and isinstance(out[i], str) and out[i]:
            out[i] = os.path.abspath(os.path.expanduser(out[i]))
    return out


def _text(value) -> str:
    if isinstance(value, float):
        return f"{value:.7g}"
    if isinstance(value, str):
        return value.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    return str(value)


def format_reply(msg: osc.Message, as_json: bool = False) -> str:
    if as_json:
        args = [float(f"{a:.7g}") if isinstance(a, float) else a for a in msg.args]
        return json.dumps({"address": msg.address, "args": args}, ensure_ascii=False)
    return " ".join([msg.address, *(_text(a) for a in msg.args)])


def expected_results(address: str, args: list) -> int:
    cmd = PROTOCOL.get(address)
    return cmd.expected_results(args) if cmd else 1


def request(address: str, args: list, host: str, port: int, timeout: float,
            on_reply: Callable[[osc.Message], None], on_error: Callable[[str], None]) -> int:
    """Send one request and pass each reply to `on_reply` until it is complete; returns the exit code.

    The request is complete after as many `/tad/done` as it has results, or at its first `/tad/fail`.
    `timeout` is the longest wait for each next reply.
    """
    if not address.startswith("/"):
        raise UsageError(f"{address!r}: an OSC address starts with '/' (e.g. /tad/ping)")
    try:
        family, _, _, _, target = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    except (socket.gaierror, UnicodeError, OverflowError) as e:
        raise UsageError(f"cannot resolve host {host!r}: {e}") from None
    try:
        packet = osc.encode(address, *args, limit=65000)
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from None
    expected, done = expected_results(address, args), 0
    where = f"{host}:{port}"
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        # Connected: an ICMP "port unreachable" (no daemon) then shows up at once as ConnectionRefusedError.
        sock.connect(target)
        sock.send(packet)
        deadline = time.monotonic() + timeout
        while True:
            sock.settimeout(max(0.0, deadline - time.monotonic()))
            try:
                data = sock.recv(65535)
            except TimeoutError:
                on_error(f"no reply from {where} within {timeout:g} s")
                return NO_REPLY
            except ConnectionError:
                on_error(f"no tad-daemon is listening on {where} (start one with: tad-daemon serve)")
                return NO_REPLY
            try:
                messages = osc.parse(data)
            except osc.BadPacket:
                continue
            for msg in messages:
                if not isinstance(msg, osc.Message):
                    continue
                deadline = time.monotonic() + timeout
                on_reply(msg)
                command = msg.args[0] if msg.args else None
                if msg.address == FAIL and command in (address, UNKNOWN):
                    return FAILED
                if msg.address == DONE and command == address:
                    done += 1
                    if done >= expected:
                        return OK


class Broadcasts:
    """A socket for the daemon's broadcasts (register its `port` with `/tad/notify 1 PORT`); they come from
    other ports than replies, so a request's own socket never sees them."""

    def __init__(self, host: str, port: int):
        family, _, _, _, target = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect(target)  # no packet is sent: this only picks the local address that reaches the daemon
            local = probe.getsockname()[0]
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((local, 0))
        self.port = self.sock.getsockname()[1]

    def receive(self, timeout: float) -> osc.Message | None:
        """The next broadcast, or None after `timeout` seconds."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65535)
            messages = [m for m in osc.parse(data) if isinstance(m, osc.Message)]
        except (TimeoutError, osc.BadPacket):
            return None
        return messages[0] if messages else None

    def close(self) -> None:
        self.sock.close()
