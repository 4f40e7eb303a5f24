"""A small, real LSP client for end-to-end tests: Content-Length framing over a child's stdio."""

import json
import queue
import subprocess
import threading
import time


class LspClient:
    def __init__(self, argv, env=None, cwd=None):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=open("/tmp/infinity-matrix-e2e-server.log", "ab"),
                                     env=env, cwd=cwd)
        self.inbox = queue.Queue()
        self.next_id = 1
        self.notifications = []
        self.server_requests = []
        self.responses = {}
        # Answers to server->client requests: method -> function(params) -> result
        self.handlers = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        out = self.proc.stdout
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    self.inbox.put(None)
                    return
                line = line.strip()
                if not line:
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            body = out.read(length)
            self.inbox.put(json.loads(body))

    def send(self, msg):
        data = json.dumps(msg).encode()
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(data) + data)
        self.proc.stdin.flush()

    def notify(self, method, params):
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def request_async(self, method, params):
        rid = self.next_id
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        return rid

    def pump(self, timeout=0.1):
        """Handles one incoming message (if any within timeout)."""
        try:
            msg = self.inbox.get(timeout=timeout)
        except queue.Empty:
            return False
        if msg is None:
            raise RuntimeError("server exited")
        if "method" in msg and "id" in msg:
            self.server_requests.append(msg)
            handler = self.handlers.get(msg["method"])
            result = handler(msg.get("params")) if handler else None
            self.send({"jsonrpc": "2.0", "id": msg["id"], "result": result})
        elif "method" in msg:
            if isinstance(msg.get("params"), dict):
                msg["params"]["_received"] = time.time()
            self.notifications.append(msg)
        else:
            self.responses[msg["id"]] = msg
        return True

    def wait_for(self, predicate, timeout, what):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = predicate()
            if value:
                return value
            self.pump()
        raise TimeoutError("timed out waiting for " + what)

    def request(self, method, params, timeout=60):
        rid = self.request_async(method, params)
        resp = self.wait_for(lambda: self.responses.get(rid), timeout, method)
        if "error" in resp:
            raise RuntimeError("%s failed: %s" % (method, resp["error"]))
        return resp.get("result")

    def task_events(self, task_id):
        return [n["params"] for n in self.notifications
                if n["method"] == "infinityMatrix/taskEvent"
                and (n["params"].get("taskId") == task_id or n["params"].get("task", {}).get("id") == task_id)]

    def wait_task_end(self, task_id, timeout=180):
        def done():
            for ev in self.task_events(task_id):
                if ev["type"] == "state" and ev["task"]["state"] in ("succeeded", "failed", "cancelled"):
                    return ev["task"]
            return None
        return self.wait_for(done, timeout, "task %s to finish" % task_id)

    def streamed_text(self, task_id):
        text = ""
        for ev in self.task_events(task_id):
            if ev["type"] == "chunk":
                text += ev["text"]
            elif ev["type"] == "reset":
                text = ""
        return text

    def close(self):
        try:
            self.request("shutdown", None, timeout=30)
            self.notify("exit", None)
            self.proc.wait(timeout=10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
