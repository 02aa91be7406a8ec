"""Loaded by every Python process of a no-egress run (it is put first on
PYTHONPATH): records each attempt to reach a host other than this machine.

An audit hook sees every name lookup and every connect before the network
namespace refuses it, so a library that tries to call out and quietly
swallows the failure is still caught. Only the destination is written, to
the file named by NO_EGRESS_LOG; nothing else about the call.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys

_LOG = os.environ.get("NO_EGRESS_LOG", "")
_LOCAL_NAMES = {"", "localhost", "localhost.localdomain", socket.gethostname()}


def _is_local(host: object) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    text = str(host).strip("[]").split("%")[0]
    if text.lower() in _LOCAL_NAMES:
        return True
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _is_address(host: object) -> bool:
    text = host.decode("ascii", "replace") if isinstance(host, bytes) else str(host)
    try:
        ipaddress.ip_address(text.strip("[]").split("%")[0])
    except ValueError:
        return False
    return True


def _record(kind: str, host: object, port: object) -> None:
    with open(_LOG, "a", encoding="utf-8") as out:
        out.write(f"{os.getpid()} {kind} {host}:{port}\n")


def _watch(event: str, args: tuple[object, ...]) -> None:
    if event == "socket.getaddrinfo":
        host, port = args[0], args[1]
        # A numeric address needs no lookup; its connect is what counts.
        if not _is_local(host) and not _is_address(host):
            _record("lookup", host, port)
    elif event in ("socket.connect", "socket.sendto"):
        address = args[1]
        if isinstance(address, tuple) and address and not _is_local(address[0]):
            _record(
                event.split(".")[1], address[0], address[1] if len(address) > 1 else ""
            )


if _LOG:
    sys.addaudithook(_watch)
    # Which processes were watched, so an empty log is known to mean something.
    with open(_LOG + ".watched", "a", encoding="utf-8") as out:
        out.write(f"{os.getpid()} {' '.join(sys.orig_argv[1:4])}\n")
