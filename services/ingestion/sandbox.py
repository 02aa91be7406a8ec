"""Parser workers: hostile files are parsed in processes that may die.

Each worker is a separate Python process with its address space, CPU time
and core files capped (``worker.py``). A worker that answers is reused for
the next file; one that overruns its time is killed with everything it
started, and one that dies is replaced. Either way the service keeps serving
and the upload is refused with a typed error.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from strongroom.services.common.errors import StrongroomError
from strongroom.services.ingestion import errors as ingestion_errors
from strongroom.services.ingestion.domain import Limits
from strongroom.services.ingestion.errors import (
    ParseMemoryExceeded,
    ParserCrashed,
    ParserUnavailable,
    ParseTimeout,
)
from strongroom.services.ingestion.model import ParsedDocument, from_json
from strongroom.services.ingestion.worker import READY, RESULT, limits_to_json

logger = logging.getLogger(__name__)

_WORKER_MODULE = "strongroom.services.ingestion.worker"
# How long a new worker may take to import its parsers, on a busy machine.
_STARTUP_SECONDS = 120.0
# Signals a process receives when it overruns RLIMIT_CPU or fails to allocate.
_RESOURCE_SIGNALS = {-signal.SIGXCPU, -signal.SIGKILL, -signal.SIGABRT}


class _Worker:
    def __init__(self, limits: Limits) -> None:
        cpu_seconds = max(int(limits.parse_timeout_seconds * 2), 1)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                _WORKER_MODULE,
                str(limits.parse_memory_bytes),
                str(cpu_seconds),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            # Its own process group, so a timeout also stops Tesseract.
            start_new_session=True,
        )
        assert self.process.stdout is not None
        ready = _read_line(self.process.stdout, _STARTUP_SECONDS)
        if ready is None or ready.strip() != READY.encode():
            self.stop()
            raise ParserUnavailable()

    @property
    def is_alive(self) -> bool:
        return self.process.poll() is None

    def ask(self, request: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        """Send one request; the reply, or None when the worker died or hung."""
        stdin = self.process.stdin
        stdout = self.process.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write(json.dumps(request).encode() + b"\n")
            stdin.flush()
        except (BrokenPipeError, OSError):
            return None
        line = _read_line(stdout, timeout)
        if line is None:
            return None
        reply: dict[str, Any] = json.loads(line)
        return reply

    def stop(self) -> None:
        if self.is_alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def _read_line(stream: IO[bytes], timeout: float) -> bytes | None:
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    descriptor = stream.fileno()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        ready, _, _ = select.select([descriptor], [], [], remaining)
        if not ready:
            return None
        chunk = os.read(descriptor, 65536)
        if not chunk:
            return None
        chunks.append(chunk)
        if chunk.endswith(b"\n"):
            return b"".join(chunks)


class ParserPool:
    """Up to ``size`` workers shared by the service's request threads."""

    def __init__(self, limits: Limits, size: int = 2) -> None:
        self.limits = limits
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)

    def parse(self, path: Path, media_type: str, out_dir: Path) -> ParsedDocument:
        """Parse a file in a worker; its derived files are left in ``out_dir``.

        Raises:
            ParseTimeout: the parse overran its time.
            ParseMemoryExceeded: the parse needed more memory than allowed.
            ParserCrashed: the worker died on the file.
            StrongroomError: the typed refusal the parser gave.
        """
        request = {
            "path": str(path),
            "media_type": media_type,
            "out_dir": str(out_dir),
            "limits": limits_to_json(self.limits),
        }
        with self._slots:
            worker = self._take()
            reply = worker.ask(request, self.limits.parse_timeout_seconds)
            if reply is None:
                self._fail(worker, media_type)
            self._idle.put(worker)
        assert reply is not None
        if not reply["ok"]:
            raise _typed_error(reply)
        with (out_dir / RESULT).open(encoding="utf-8") as handle:
            result = json.load(handle)
        return from_json(result["document"], result["text"])

    def container_names(self, path: Path) -> list[str]:
        """The entry names of a ZIP or OLE file that tell its type.

        Listing a container reads its whole directory, which a hostile file
        can make enormous, so this too runs in a worker; a listing that fails
        or overruns is no listing, and the file is then an unknown container.
        """
        request = {"op": "names", "path": str(path)}
        with self._slots:
            worker = self._take()
            reply = worker.ask(request, self.limits.parse_timeout_seconds)
            if reply is None:
                worker.stop()
                return []
            self._idle.put(worker)
        return [str(name) for name in reply.get("names", [])]

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().stop()
            except queue.Empty:
                return

    def _take(self) -> _Worker:
        while True:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                return _Worker(self.limits)
            if worker.is_alive:
                return worker
            worker.stop()

    def _fail(self, worker: _Worker, media_type: str) -> None:
        was_alive = worker.is_alive
        worker.stop()
        code = worker.process.returncode
        logger.warning(
            "parser_worker_lost",
            extra={"timed_out": was_alive, "returncode": code},
        )
        if was_alive:
            raise ParseTimeout(self.limits.parse_timeout_seconds)
        if code in _RESOURCE_SIGNALS:
            raise ParseMemoryExceeded(self.limits.parse_memory_bytes)
        raise ParserCrashed(media_type)


def _typed_error(reply: dict[str, Any]) -> StrongroomError:
    """Rebuild the worker's refusal as the same typed error, same code."""
    cls = getattr(ingestion_errors, str(reply["error"]), None)
    if not (isinstance(cls, type) and issubclass(cls, StrongroomError)):
        cls = ParserCrashed
    error = cls.__new__(cls)
    StrongroomError.__init__(error, str(reply["message"]), code=str(reply["code"]))
    return error
