"""End-to-end: infinity-matrix lsp over stdio, answering through its embedded model (SmolLM2-135M-Instruct, Q4_0).

Usage: local_model_e2e.py BINARY MODEL_PATH
Prints one line per check and a closing 'N passed, N failed' line.
"""

import ast
import json
import os
import re
import socket
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(__file__))
from lsp_client import LspClient  # noqa: E402

BINARY, MODEL = sys.argv[1], sys.argv[2]

SAMPLE = '''def add(a, b):
    return a + b


def greet(name):
    return "Hello, " + name
'''

EDIT_PROMPT = ("Add a one-line docstring to this {{language}} function. Reply with exactly one fenced code block "
               "containing the complete function.\n\n```{{language}}\n{{selection}}\n```")


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def ollama_answers():
    try:
        socket.create_connection(("127.0.0.1", 11434), timeout=0.5).close()
        return True
    except OSError:
        return False


def file_uri(path):
    return "file://" + path


results = []


def check(name, fn):
    try:
        fn()
        results.append((name, True))
        print("ok   " + name, flush=True)
    except Exception:
        results.append((name, False))
        print("FAIL " + name, flush=True)
        traceback.print_exc()


def chunk_times(client, task_id):
    return [e["_received"] for e in client.task_events(task_id) if e["type"] == "chunk"]


def end_time(client, task_id):
    for e in client.task_events(task_id):
        if e["type"] == "state" and e["task"]["state"] in ("succeeded", "failed", "cancelled"):
            return e["_received"]
    return None


def main():
    work = tempfile.mkdtemp(prefix="im-e2e-")
    root = os.path.join(work, "ws")
    os.makedirs(root)
    sample = os.path.join(root, "sample.py")
    with open(sample, "w") as f:
        f.write(SAMPLE)
    env = dict(os.environ)
    env["XDG_CONFIG_HOME"] = os.path.join(work, "config")
    env["XDG_DATA_HOME"] = os.path.join(work, "data")
    live = {"kind": "embedded", "model_path": MODEL, "model": "smollm2", "max_tokens": 96, "temperature": 0.0}
    dead = {"kind": "openai", "base_url": "http://127.0.0.1:%d/v1" % closed_port(), "model": "none",
            "max_attempts": 1, "connect_timeout_ms": 500}
    config = {
        "providers": {"live": live, "dead": dead},
        "agents": {
            "explain": {"providers": ["dead", "live"]},
            "doc-auto": {"description": "Docstring, applied automatically", "output": "edit", "approval": "auto",
                         "providers": ["live"], "prompt": EDIT_PROMPT},
            "doc-manual": {"description": "Docstring, after approval", "output": "edit", "approval": "manual",
                           "providers": ["live"], "prompt": EDIT_PROMPT},
            "story": {"description": "A long answer", "providers": ["live"], "concurrency": 2,
                      "prompt": "{{prompt}}"},
        },
        "defaults": {"agent": "explain", "providers": ["live"]},
    }
    started = time.time()
    client = LspClient([BINARY, "lsp"], env=env)
    applied = []
    client.handlers["workspace/applyEdit"] = lambda p: (applied.append(p), {"applied": True})[1]
    answers = []
    client.handlers["window/showMessageRequest"] = lambda p: {"title": answers.pop(0)} if answers else None
    client.request("initialize", {
        "processId": None, "rootUri": file_uri(root),
        "workspaceFolders": [{"uri": file_uri(root), "name": "ws"}],
        "initializationOptions": {"config": config},
        "capabilities": {"window": {"workDoneProgress": True, "showMessage": {}},
                         "workspace": {"workspaceEdit": {"documentChanges": True}}},
    })
    print("     initialize answered in %.1f ms (the model is not loaded at start)" % ((time.time() - started) * 1000),
          flush=True)
    client.notify("initialized", {})
    client.notify("textDocument/didOpen", {"textDocument": {"uri": file_uri(sample), "languageId": "python",
                                                            "version": 1, "text": SAMPLE}})
    add_range = {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 16}}

    def start(agent, prompt=None):
        args = {"agent": agent, "textDocument": {"uri": file_uri(sample)}, "range": add_range}
        if prompt:
            args["prompt"] = prompt
        return client.request("workspace/executeCommand", {"command": "infinity-matrix.startAgent",
                                                           "arguments": [args]})["taskId"]

    def execute_prompt_streams_a_real_answer_after_failover():
        sent = time.time()
        r = client.request("workspace/executeCommand", {"command": "infinity-matrix.executePrompt", "arguments": [{
            "prompt": "What does this function do?", "textDocument": {"uri": file_uri(sample)}, "range": add_range}]})
        task_id = r["taskId"]
        task = client.wait_task_end(task_id)
        assert task["state"] == "succeeded", task
        assert task["provider"] == "live", task
        stream = [e for e in client.task_events(task_id) if e["type"] in ("chunk", "reset")]
        assert sum(1 for e in stream if e["type"] == "chunk") > 3, "streamed in several chunks"
        seqs = [e["seq"] for e in stream]
        assert seqs == list(range(1, len(seqs) + 1)), "chunk/reset sequence numbers run 1..n: %s" % seqs
        text = client.streamed_text(task_id)
        assert len(text.strip()) > 10, repr(text)
        full = client.request("infinityMatrix/task", {"taskId": task_id})
        assert full["text"] == text, "task output equals the streamed text"
        audit = client.request("infinityMatrix/audit", {"taskId": task_id, "kind": "attempt"})
        providers = [e["details"].get("provider") for e in audit["entries"]]
        assert "dead" in providers and "live" in providers, audit
        progress = [n for n in client.notifications if n["method"] == "$/progress"
                    and n["params"]["token"] == "infinity-matrix/task/" + task_id]
        kinds = [p["params"]["value"]["kind"] for p in progress]
        assert kinds[0] == "begin" and kinds[-1] == "end", kinds
        first = chunk_times(client, task_id)[0] - sent
        print("     first chunk %.2f s after the request (model load included); answer: %s"
              % (first, text.strip().replace("\n", " ")[:160]), flush=True)

    def auto_edit_lands_as_a_fenced_block_that_parses():
        before = len(applied)
        task_id = start("doc-auto")
        task = client.wait_task_end(task_id)
        assert task["state"] == "succeeded", task
        reply = client.streamed_text(task_id)
        assert re.search(r"```[a-z]*\n", reply), "the reply has a fenced block: %r" % reply
        assert len(applied) == before + 1, "one workspace/applyEdit"
        change = applied[-1]["edit"]["documentChanges"][0]
        assert change["textDocument"]["uri"] == file_uri(sample)
        new_text = change["edits"][0]["newText"]
        assert "def add" in new_text, new_text
        ast.parse(new_text)  # the edit is valid Python
        audit = client.request("infinityMatrix/audit", {"taskId": task_id, "kind": "approval"})
        assert any(e["details"].get("decision") == "auto" for e in audit["entries"]), audit
        print("     edit: " + new_text.strip().replace("\n", "\\n")[:160], flush=True)

    def manual_approval_round_trip():
        before = len(applied)
        answers.append("Apply")
        task = client.wait_task_end(start("doc-manual"))
        assert task["state"] == "succeeded", task
        asked = [q for q in client.server_requests if q["method"] == "window/showMessageRequest"]
        assert asked and [a["title"] for a in asked[-1]["params"]["actions"]] == ["Apply", "Reject"]
        assert len(applied) == before + 1
        answers.append("Reject")
        task = client.wait_task_end(start("doc-manual"))
        assert task["state"] == "cancelled", task
        assert len(applied) == before + 1, "a rejected edit is not applied"

    def cancel_mid_stream_stops_the_model():
        task_id = start("story", "Write a long story about a robot who learns to paint. Use many paragraphs.")
        client.wait_for(lambda: len(chunk_times(client, task_id)) >= 3, 120, "the story to start streaming")
        cancelled_at = time.time()
        client.request("workspace/executeCommand", {"command": "infinity-matrix.cancelTask",
                                                    "arguments": [{"taskId": task_id}]})
        task = client.wait_task_end(task_id, timeout=30)
        assert task["state"] == "cancelled", task
        late = [t for t in chunk_times(client, task_id) if t > cancelled_at + 0.5]
        assert not late, "no chunk half a second after the cancel: %d late" % len(late)
        # The model is free at once: a new task streams its first chunk promptly.
        sent = time.time()
        follow = start("story", "Say hi.")
        task = client.wait_task_end(follow)
        assert task["state"] == "succeeded", task
        first = chunk_times(client, follow)[0] - sent
        assert first < 10, "the next task was not held up by the cancelled one: %.1f s" % first

    def two_tasks_queue_on_one_model():
        a = start("story", "Name three colors.")
        b = start("story", "Name three animals.")
        ta, tb = client.wait_task_end(a), client.wait_task_end(b)
        assert ta["state"] == "succeeded" and tb["state"] == "succeeded", (ta, tb)
        ca, cb = chunk_times(client, a), chunk_times(client, b)
        assert ca and cb, "both streamed"
        first, second = (a, b) if ca[0] <= cb[0] else (b, a)
        # One reply at a time: the second streams only after the first has finished.
        assert chunk_times(client, second)[0] >= chunk_times(client, first)[-1], \
            "replies interleaved: %s / %s" % (ca, cb)
        assert end_time(client, first) is not None

    def metrics_and_status_report_the_runs():
        m = client.request("infinityMatrix/metrics", None)
        dump = json.dumps(m)
        assert "provider_requests_total" in dump and "live" in dump, dump[:400]
        status = [n for n in client.notifications if n["method"] == "infinityMatrix/agentStatus"]
        assert status, "agentStatus notifications"
        names = [p["name"] for p in status[-1]["params"]["providers"]]
        assert "live" in names and "dead" in names

    check("executePrompt streams a real answer (failover from a dead provider to the embedded model)",
          execute_prompt_streams_a_real_answer_after_failover)
    check("an edit agent's fenced block parses and lands through workspace/applyEdit",
          auto_edit_lands_as_a_fenced_block_that_parses)
    check("manual approval round-trip through window/showMessageRequest (apply, then reject)",
          manual_approval_round_trip)
    check("cancelling mid-stream stops the model; the next task runs at once", cancel_mid_stream_stops_the_model)
    check("two tasks at once queue on the one model", two_tasks_queue_on_one_model)
    check("metrics and agentStatus report the runs", metrics_and_status_report_the_runs)
    client.close()

    def no_configuration_answers_through_the_embedded_model():
        # A fresh data home whose models/ is the installed one and no configuration: the default
        # chain is Ollama (not running here), then the embedded model.
        data = os.path.join(work, "data-default")
        os.makedirs(os.path.join(data, "infinity-matrix"))
        os.symlink(os.path.dirname(MODEL), os.path.join(data, "infinity-matrix", "models"))
        env2 = dict(env, XDG_DATA_HOME=data, XDG_CONFIG_HOME=os.path.join(work, "config-none"))
        plain = LspClient([BINARY, "lsp"], env=env2)
        try:
            plain.request("initialize", {"processId": None, "rootUri": file_uri(root),
                                         "workspaceFolders": [{"uri": file_uri(root), "name": "ws"}],
                                         "capabilities": {}})
            plain.notify("initialized", {})
            plain.notify("textDocument/didOpen", {"textDocument": {"uri": file_uri(sample), "languageId": "python",
                                                                   "version": 1, "text": SAMPLE}})
            r = plain.request("workspace/executeCommand", {"command": "infinity-matrix.executePrompt", "arguments": [{
                "prompt": "What does this function do?", "textDocument": {"uri": file_uri(sample)},
                "range": add_range}]})
            task = plain.wait_task_end(r["taskId"])
            assert task["state"] == "succeeded", task
            if not ollama_answers():
                assert task["provider"] == "local", task
            assert len(plain.streamed_text(r["taskId"]).strip()) > 10
        finally:
            plain.close()

    check("with no configuration the default chain answers through the embedded model",
          no_configuration_answers_through_the_embedded_model)
    passed = sum(1 for _, ok in results if ok)
    failed = len(results) - passed
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
