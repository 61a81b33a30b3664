"""OSC packets in and out, on top of python-osc, with the checks a server facing arbitrary bytes needs.

`parse` never raises anything but `BadPacket` (a packet that is not OSC at all); a message whose address
could be read but whose arguments could not comes back as a `BadMessage`, so the reply can name it.
`encode` builds only `i`, `f` and `s` arguments and keeps every packet under `MAX_PACKET` bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from tad_daemon.limits import INT32

MAX_PACKET = 1400  # bytes: fits one Ethernet frame, and every OSC receiver we know of
MAX_ARGS = 64
MAX_BUNDLE = 64  # messages in one bundle
MAX_DEPTH = 4  # nested bundles
# Types python-osc parses without data-dependent surprises; the rest are refused before parsing.
ACCEPTED_TYPES = frozenset("ifsdhTFNb")


class BadPacket(ValueError):
    """Not an OSC packet: no address to name in the reply."""


@dataclass
class BadMessage:
    address: str
    reason: str


@dataclass
class Message:
    address: str
    args: list
    types: str = ""


def _pad4(n: int) -> int:
    return (n + 4) & ~3


def parse_message(data: bytes) -> Message | BadMessage:
    if not data.startswith(b"/"):
        raise BadPacket("not an OSC message (no address)")
    end = data.find(b"\0")
    if end < 0:
        raise BadPacket("not an OSC message (unterminated address)")
    try:
        address = data[:end].decode("utf-8")
    except UnicodeDecodeError:
        raise BadPacket("not an OSC message (address is not UTF-8)") from None
    at = _pad4(end)
    if at >= len(data):
        return Message(address, [], "")  # OSC 1.0 allows a message without a type tag string
    if data[at:at + 1] != b",":
        return BadMessage(address, "no type tag string")
    tag_end = data.find(b"\0", at)
    if tag_end < 0:
        return BadMessage(address, "unterminated type tag string")
    types = data[at + 1:tag_end].decode("latin-1")
    if len(types) > MAX_ARGS:
        return BadMessage(address, f"too many arguments (more than {MAX_ARGS})")
    unknown = sorted(set(types) - ACCEPTED_TYPES)
    if unknown:
        return BadMessage(address, f"unsupported argument type {unknown[0]!r} (use i, f or s)")
    try:
        params = OscMessage(data).params
    except UnicodeDecodeError:
        return BadMessage(address, "strings must be UTF-8")
    except Exception:  # python-osc's ParseError, or anything a malformed packet provokes in it
        return BadMessage(address, "malformed arguments (truncated or misaligned)")
    return Message(address, list(params), types)


def parse(data: bytes, depth: int = 0) -> list[Message | BadMessage]:
    """The messages of a packet (a bundle's contents in order, its time tag ignored: we answer at once)."""
    if not data.startswith(b"#bundle\0"):
        return [parse_message(data)]
    if depth >= MAX_DEPTH:
        raise BadPacket("bundles nested too deep")
    if len(data) < 16:
        raise BadPacket("truncated bundle")
    out: list[Message | BadMessage] = []
    at = 16
    while at < len(data):
        size = int.from_bytes(data[at:at + 4], "big", signed=True)
        at += 4
        if size <= 0 or size % 4 or at + size > len(data):
            raise BadPacket("malformed bundle (bad element size)")
        out.extend(parse(data[at:at + size], depth + 1))
        at += size
        if len(out) > MAX_BUNDLE:
            raise BadPacket(f"more than {MAX_BUNDLE} messages in one bundle")
    return out


def _build(address: str, args: tuple) -> bytes:
    builder = OscMessageBuilder(address)
    for a in args:
        if isinstance(a, (bool, int)):
            if not INT32[0] <= a <= INT32[1]:
                raise ValueError(f"{a} does not fit an OSC int32")
            builder.add_arg(int(a), "i")
        elif isinstance(a, float):
            builder.add_arg(a, "f")
        elif isinstance(a, str):
            builder.add_arg(a.replace("\0", "\ufffd"), "s")
        else:
            raise TypeError(f"reply arguments are int, float or str, not {type(a).__name__}")
    return builder.build().dgram


def _shorten(text: str, by: int) -> str:
    """`text` at least `by` bytes shorter in UTF-8, cut in the middle (both ends of a path stay readable)."""
    n = by + 3  # characters out (each at least one byte), "..." in
    if len(text) - n < 8:
        return text[:5] + "..."
    start = (len(text) - n) // 2
    return text[:start] + "..." + text[start + n:]


def encode(address: str, *args: int | float | str, limit: int = MAX_PACKET) -> bytes:
    """An OSC message of `i`, `f` and `s` arguments, never over `limit` bytes (the longest strings shrink)."""
    data = _build(address, args)
    args_ = list(args)
    while len(data) > limit:
        strings = [i for i, a in enumerate(args_) if isinstance(a, str) and len(a) > 8]
        if not strings:
            raise ValueError(f"message to {address} does not fit {limit} bytes")
        longest = max(strings, key=lambda i: len(args_[i].encode()))
        args_[longest] = _shorten(args_[longest], len(data) - limit + 4)
        data = _build(address, tuple(args_))
    return data
