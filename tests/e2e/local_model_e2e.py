"""End-to-end: infinity-matrix lsp over stdio against a real llama.cpp server running SmolLM2.

Usage: local_model_e2e.py BINARY BASE_URL
Prints one line per check and a closing 'N passed, N failed' line.
"""

import json
import os
import socket
import sys
import tempfile
import traceback

sys.path.insert(0, os.path.dirname(__file__))
from lsp_client import LspClient  # noqa: E402

BINARY, BASE_URL = sys.argv[1], sys.argv[2]

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
    live = {"kind": "openai", "base_url": BASE_URL, "model": "smollm2", "max_tokens": 96, "temperature": 0.0}
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
        },
        "defaults": {"agent": "explain", "providers": ["live"]},
    }
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
    client.notify("initialized", {})
    client.notify("textDocument/didOpen", {"textDocument": {"uri": file_uri(sample), "languageId": "python",
                                                            "version": 1, "text": SAMPLE}})
    add_range = {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 16}}

    def execute_prompt_streams_a_real_answer_after_failover():
        r = client.request("workspace/executeCommand", {"command": "infinity-matrix.executePrompt", "arguments": [{
            "prompt": "What does this function do?", "textDocument": {"uri": file_uri(sample)}, "range": add_range}]})
        task_id = r["taskId"]
        task = client.wait_task_end(task_id)
        assert task["state"] == "succeeded", task
        assert task["provider"] == "live", task
        stream = [e for e in client.task_events(task_id) if e["type"] in ("chunk", "reset")]
        assert any(e["type"] == "chunk" for e in stream), "streamed chunks"
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
        print("     answer: " + text.strip().replace("\n", " ")[:160], flush=True)

    def auto_edit_lands_through_apply_edit():
        before = len(applied)
        r = client.request("workspace/executeCommand", {"command": "infinity-matrix.startAgent", "arguments": [{
            "agent": "doc-auto", "textDocument": {"uri": file_uri(sample)}, "range": add_range}]})
        task = client.wait_task_end(r["taskId"])
        assert task["state"] == "succeeded", task
        assert len(applied) == before + 1, "one workspace/applyEdit"
        change = applied[-1]["edit"]["documentChanges"][0]
        assert change["textDocument"]["uri"] == file_uri(sample)
        new_text = change["edits"][0]["newText"]
        assert "def add" in new_text, new_text
        audit = client.request("infinityMatrix/audit", {"taskId": r["taskId"], "kind": "approval"})
        assert any(e["details"].get("decision") == "auto" for e in audit["entries"]), audit

    def manual_approval_round_trip():
        before = len(applied)
        answers.append("Apply")
        r = client.request("workspace/executeCommand", {"command": "infinity-matrix.startAgent", "arguments": [{
            "agent": "doc-manual", "textDocument": {"uri": file_uri(sample)}, "range": add_range}]})
        task = client.wait_task_end(r["taskId"])
        assert task["state"] == "succeeded", task
        asked = [q for q in client.server_requests if q["method"] == "window/showMessageRequest"]
        assert asked and [a["title"] for a in asked[-1]["params"]["actions"]] == ["Apply", "Reject"]
        assert len(applied) == before + 1
        answers.append("Reject")
        r = client.request("workspace/executeCommand", {"command": "infinity-matrix.startAgent", "arguments": [{
            "agent": "doc-manual", "textDocument": {"uri": file_uri(sample)}, "range": add_range}]})
        task = client.wait_task_end(r["taskId"])
        assert task["state"] == "cancelled", task
        assert len(applied) == before + 1, "a rejected edit is not applied"

    def metrics_and_status_report_the_runs():
        m = client.request("infinityMatrix/metrics", None)
        dump = json.dumps(m)
        assert "provider_requests_total" in dump and "live" in dump, dump[:400]
        status = [n for n in client.notifications if n["method"] == "infinityMatrix/agentStatus"]
        assert status, "agentStatus notifications"
        names = [p["name"] for p in status[-1]["params"]["providers"]]
        assert "live" in names and "dead" in names

    check("executePrompt streams a real answer (failover from a dead provider to the live one)",
          execute_prompt_streams_a_real_answer_after_failover)
    check("an auto edit agent's result lands through workspace/applyEdit", auto_edit_lands_through_apply_edit)
    check("manual approval round-trip through window/showMessageRequest (apply, then reject)",
          manual_approval_round_trip)
    check("metrics and agentStatus report the runs", metrics_and_status_report_the_runs)
    client.close()
    passed = sum(1 for _, ok in results if ok)
    failed = len(results) - passed
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
