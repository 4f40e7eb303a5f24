"""A minimal LSP client over stdio (the benchmark's way to ask rust-analyzer): framing, a
reader thread, requests with timeouts (a timed-out request is cancelled and raises
TimeoutError), and server-to-client requests answered with null.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import quote, unquote, urlparse


def path_to_uri(path: Path) -> str:
    return "file://" + quote(str(Path(path).resolve()))


def uri_to_path(uri: str) -> Path:
    return Path(unquote(urlparse(uri).path))


class LspClient:
    def __init__(self, cmd: list[str], cwd: Path, stderr_path: Path | None = None):
        self.stderr = open(stderr_path, "wb") if stderr_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            cmd, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr
        )
        self.next_id = 0
        self.pending: dict[int, queue.Queue] = {}
        self.notifications: queue.Queue = queue.Queue()
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read_loop, daemon=True)
        self.reader.start()

    def _send(self, msg: dict) -> None:
        body = json.dumps(msg).encode()
        with self.lock:
            self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            self.proc.stdin.flush()

    def _read_loop(self) -> None:
        out = self.proc.stdout
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    self._closed()
                    return
                line = line.strip()
                if not line:
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length is None:
                continue
            msg = json.loads(out.read(length))
            if "id" in msg and "method" in msg:
                # A request from the server (configuration, progress, ...): answer null,
                # or a list of nulls for workspace/configuration.
                result = None
                if msg["method"] == "workspace/configuration":
                    result = [None for _ in msg.get("params", {}).get("items", [])]
                self._send({"jsonrpc": "2.0", "id": msg["id"], "result": result})
            elif "id" in msg:
                q = self.pending.pop(msg["id"], None)
                if q:
                    q.put(msg)
            else:
                self.notifications.put(msg)

    def _closed(self) -> None:
        for q in list(self.pending.values()):
            q.put({"error": {"message": "server closed"}})
        self.notifications.put(None)

    def request(self, method: str, params, timeout: float = 30.0):
        with self.lock:
            self.next_id += 1
            rid = self.next_id
        q: queue.Queue = queue.Queue()
        self.pending[rid] = q
        self._send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        try:
            msg = q.get(timeout=timeout)
        except queue.Empty:
            self.pending.pop(rid, None)
            self.notify("$/cancelRequest", {"id": rid})
            raise TimeoutError(f"{method} timed out after {timeout}s") from None
        if "error" in msg:
            raise RuntimeError(f"{method}: {msg['error'].get('message')}")
        return msg.get("result")

    def notify(self, method: str, params) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    def wait_notification(self, pred, timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                msg = self.notifications.get(timeout=left)
            except queue.Empty:
                return None
            if msg is None:
                return None
            if pred(msg):
                return msg

    def close(self) -> None:
        try:
            self.request("shutdown", None, timeout=10)
            self.notify("exit", None)
            self.proc.wait(timeout=10)
        except Exception:  # noqa: BLE001 - best effort, then kill
            pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.stderr not in (None, subprocess.DEVNULL):
            self.stderr.close()
