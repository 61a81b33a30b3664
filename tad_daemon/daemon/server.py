"""The OSC server: one UDP socket, every request checked against the protocol table before its handler runs,
and replies routed back to the sender and to the clients registered with /tad/notify.

The daemon maps each address to its handler with `server.map(address, handler)` (daemon/app.py); a handler
gets a `Request` and answers it with `request.done(field=value, ...)` (the table's reply, by name) or
`request.fail(message)`, now or later from another thread, or raises `Refused` to fail it with a message.
No torch here.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from tad_daemon.daemon.log import RateLimited
from tad_daemon.protocol import osc
from tad_daemon.protocol.table import (
    DONE,
    FAIL,
    NOTIFY_TTL,
    PROTOCOL,
    REPLY_ADDRESSES,
    UNKNOWN,
    Arguments,
    ProtocolError,
    bind,
    find_tag,
)

log = logging.getLogger(__name__)

MAX_REGISTRATIONS = 32


class Refused(Exception):
    """Raised by a handler: the request fails with this message."""


class AddressInUse(OSError):
    pass


def is_loopback(host: str) -> bool:
    try:
        return all(ipaddress.ip_address(info[4][0]).is_loopback
                   for info in socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM))
    except (OSError, ValueError, UnicodeError):
        return False


def check_listen(host: str, allow_remote: bool, allow: list[str]) -> str | None:
    """Why the daemon may not listen on `host`: loopback, or an explicit option and an allow-list (docs/osc.md,
    Security)."""
    if is_loopback(host):
        return None
    if not allow_remote:
        return (f"{host} is not a loopback address: other machines could send requests. To allow that, pass "
                "--allow-remote and list the client addresses in server.allow "
                "(e.g. --set server.allow=192.168.1.20)")
    if not allow:
        return "--allow-remote needs the client addresses in server.allow (e.g. --set server.allow=192.168.1.20)"
    for a in allow:
        try:
            ipaddress.ip_network(a, strict=False)
        except ValueError:
            return f"server.allow: {a!r} is not an IP address or network"
    return None


def bind_socket(host: str, port: int) -> socket.socket:
    """A UDP socket on host:port that no other process shares (no SO_REUSEADDR: a second daemon must fail)."""
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM,
                                                      flags=socket.AI_PASSIVE)[0]
    except (socket.gaierror, UnicodeError) as e:
        raise OSError(f"cannot listen on {host!r}: {e}") from None
    sock = socket.socket(family, socket.SOCK_DGRAM)
    if hasattr(socket, "SO_EXCLUSIVEADDRUSE"):  # Windows lets a second process bind the port otherwise
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        if e.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", -1), errno.EACCES):
            raise AddressInUse(
                f"cannot listen on {host}:{port}: the port is in use. Is tad-daemon already running? "
                f"(check with: tad-daemon status --port {port}), or choose another with --port") from None
        raise OSError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    try:  # room for a burst of requests while the server thread is busy (the kernel may cap it)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    except OSError:
        pass
    sock.setblocking(False)
    return sock


@dataclass
class Registration:
    sock: socket.socket  # connected to the client: a closed port shows up as an error on a later send
    expires: float


class Replies:
    """Sends replies: to the request's source, with a copy to each client registered from the same IP
    (Max's [udpsend] sends from a random port and listens on another), and broadcasts to every registration.
    A registration ends when a send to it fails (port closed), after NOTIFY_TTL, or by /tad/notify 0."""

    def __init__(self, sock: socket.socket, errors: RateLimited):
        self.sock = sock
        self.errors = errors
        self.failures = RateLimited(log, burst=50)  # the /tad/fail replies, each logged with its reason
        self.own = sock.getsockname()[:2]
        self._registrations: dict[tuple[str, int], Registration] = {}
        self._lock = threading.Lock()

    def register(self, ip: str, port: int) -> None:
        if port == self.own[1] and (is_loopback(ip) or ip == self.own[0]):
            raise Refused("that port is the daemon's own")
        with self._lock:
            old = self._registrations.pop((ip, port), None)
            if old:
                old.sock.close()
            while len(self._registrations) >= MAX_REGISTRATIONS:  # the oldest makes room
                oldest = min(self._registrations, key=lambda k: self._registrations[k].expires)
                self._registrations.pop(oldest).sock.close()
            family = socket.AF_INET6 if ":" in ip else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setblocking(False)
            try:
                sock.connect((ip, port))
            except OSError as e:
                sock.close()
                raise Refused(f"cannot send to {ip}:{port}: {e.strerror or e}") from None
            self._registrations[(ip, port)] = Registration(sock, time.monotonic() + NOTIFY_TTL)
        log.info("notifications on for %s:%d", ip, port)

    def unregister(self, ip: str, port: int) -> None:
        with self._lock:
            reg = self._registrations.pop((ip, port), None)
        if reg:
            reg.sock.close()
            log.info("notifications off for %s:%d", ip, port)

    def _to_registered(self, data: bytes, ip: str | None, skip: tuple | None) -> None:
        now = time.monotonic()
        with self._lock:
            targets = [(k, r) for k, r in self._registrations.items() if (ip is None or k[0] == ip) and k != skip]
        for key, reg in targets:
            try:
                if now > reg.expires:
                    raise TimeoutError("registration expired")
                reg.sock.send(data)
            except BlockingIOError:
                pass  # the client is slow to read: this copy is lost, the registration stays
            except OSError as e:
                with self._lock:
                    if self._registrations.get(key) is reg:
                        del self._registrations[key]
                reg.sock.close()
                log.info("notifications off for %s:%d (%s)", key[0], key[1], e.strerror or e)

    def send(self, dest: tuple, address: str, *args) -> None:
        data = osc.encode(address, *args)
        try:
            self.sock.sendto(data, dest)
        except OSError as e:  # a full buffer or an unreachable client must not stop the others
            self.errors.warning("send errors", "cannot reply to %s: %s", dest, e)
        self._to_registered(data, dest[0], (dest[0], dest[1]))

    def broadcast(self, address: str, *args) -> None:
        self._to_registered(osc.encode(address, *args), None, None)

    def close(self) -> None:
        with self._lock:
            for reg in self._registrations.values():
                reg.sock.close()
            self._registrations.clear()


class Request:
    """One request, bound to its command. Exactly one terminal reply per result; a failure ends it."""

    def __init__(self, replies: Replies, address: str, bound: Arguments, source: tuple, results: int = 1):
        self.address = address
        self.command = PROTOCOL[address]
        self.args = bound.args
        self.options = bound.options
        self.tag = bound.tag
        self.source = source
        self.results = results
        self._replies = replies
        self._sent = 0
        self._finished = False
        self._lock = threading.Lock()

    @property
    def finished(self) -> bool:
        return self._finished

    def _tagged(self, args: tuple) -> tuple:
        return (*args, self.tag) if self.tag is not None else args

    def send(self, address: str, **fields) -> None:
        """A reply that is not terminal (e.g. one /tad/model line of a list), its fields by name."""
        if not self._finished:
            self._replies.send(self.source, address, *self._tagged(self.command.reply(address).values(fields)))

    def done(self, **fields) -> None:
        """One terminal reply, its fields by name as the table names them (more may be given)."""
        values = self.command.reply(DONE).values(fields)
        with self._lock:
            if self._finished:
                return
            self._sent += 1
            self._finished = self._sent >= self.results
        self._replies.send(self.source, DONE, self.address, *self._tagged(values))

    def fail(self, message: str, *args) -> None:
        """Fails what is left of the request: nothing follows a /tad/fail."""
        with self._lock:
            if self._finished:
                return
            self._finished = True
        # Every refusal is in the log with its reason (rate-limited: a flood must not fill the disk).
        self._replies.failures.warning("failed requests", "%s from %s:%s failed: %s", self.address, *self.source[:2],
                                     message)
        self._replies.send(self.source, FAIL, self.address, message, *self._tagged(args))


Handler = Callable[[Request], None]


class Server:
    def __init__(self, host: str, port: int, allow: list[str] | None = None):
        self.host = host
        self.loopback = is_loopback(host)
        self.allowed = None if self.loopback else [ipaddress.ip_network(a, strict=False) for a in allow or []]
        self.sock = bind_socket(host, port)
        self.port = self.sock.getsockname()[1]
        self.bad = RateLimited(log)
        self.replies = Replies(self.sock, self.bad)
        self.handlers: dict[str, Handler] = {}
        self.stopping = threading.Event()

    def map(self, address: str, handler: Handler) -> None:
        """Route `address` to `handler` (a later mapping replaces an earlier one), as python-osc's dispatcher."""
        if address not in PROTOCOL:
            raise ValueError(f"{address} is not in the protocol table (tad_daemon/protocol/table.py)")
        self.handlers[address] = handler

    def broadcast(self, address: str, *args) -> None:
        self.replies.broadcast(address, *args)

    def _allowed(self, ip: str) -> bool:
        if self.allowed is None:
            return True
        try:
            addr = ipaddress.ip_address(ip.split("%")[0])
        except ValueError:
            return False
        if getattr(addr, "ipv4_mapped", None):
            addr = addr.ipv4_mapped
        return addr.is_loopback or any(addr in net for net in self.allowed)

    def serve_forever(self) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(self.sock, selectors.EVENT_READ)
            while not self.stopping.is_set():
                if not sel.select(timeout=0.2):
                    continue
                for _ in range(256):  # drain, then look at the stop flag again
                    try:
                        data, source = self.sock.recvfrom(65535)
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:  # Windows reports an earlier send's ICMP error here
                        continue
                    self.handle_packet(data, source)

    def handle_packet(self, data: bytes, source: tuple) -> None:
        if not self._allowed(source[0]):
            self.bad.warning("packets from strangers", "dropped a packet from %s (not in server.allow)", source[0])
            return
        try:
            messages = osc.parse(data)
        except osc.BadPacket as e:
            self.bad.warning("bad packets", "bad packet from %s: %s", source, e)
            self.replies.send(source, FAIL, UNKNOWN, str(e))
            return
        for msg in messages:
            try:
                self.handle(msg, source)
            except Exception:  # never let one message stop the server
                log.exception("error handling a message from %s", source)

    def handle(self, msg: osc.Message | osc.BadMessage, source: tuple) -> None:
        if msg.address in REPLY_ADDRESSES:
            self.bad.warning("stray replies", "ignored %s from %s: the daemon does not answer replies",
                             msg.address, source)
            return
        if isinstance(msg, osc.BadMessage):
            self.bad.warning("bad messages", "bad %s from %s: %s", msg.address, source, msg.reason)
            self.replies.send(source, FAIL, msg.address, msg.reason)
            return
        tag = find_tag(msg.args)
        tagged = (tag,) if tag is not None else ()
        handler = self.handlers.get(msg.address)
        if handler is None:
            self.bad.warning("unknown addresses", "unknown address %r from %s", msg.address, source)
            self.replies.send(source, FAIL, msg.address, "unknown address (see docs/osc.md)", *tagged)
            return
        cmd = PROTOCOL[msg.address]
        try:
            bound = bind(cmd, msg.args)
        except ProtocolError as e:
            self.bad.warning("bad requests", "bad %s from %s: %s", msg.address, source, e)
            self.replies.send(source, FAIL, msg.address, str(e), *tagged)
            return
        results = cmd.result_count(bound.args)
        request = Request(self.replies, msg.address, bound, source, results)
        if self.stopping.is_set():
            request.fail("daemon is shutting down")
            return
        try:
            handler(request)
        except Refused as e:
            request.fail(str(e))
        except Exception as e:
            log.exception("%s from %s failed", msg.address, source)
            request.fail(f"internal error: {e}")

    def close(self) -> None:
        self.replies.close()
        self.sock.close()
