"""The labelling app (`lima-eval annotate`), for real: the CLI serves a run, headless Chromium (Debian's, driven by
Playwright) labels by clicking and by keyboard, and the labels are checked on disk, in the report and in the
export; access, cross-site requests, XSS, a kill -9 under load, and bad input."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from conftest import run_cli, write_config

MODELS = ("zebra-model-7", "quokka-model-9")  # names that appear nowhere else: any leak is visible
XSS = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
PROMPTS = [
    {"id": "q1", "prompt": "Name a colour. " + XSS},
    {"id": "q2", "prompt": "Write one line about the sea."},
    {"id": "q3", "prompt": "What is two plus two?"},
    {"id": "q4", "prompt": "Describe rain in a sentence."},
]
SHORT = "Short & plain </pre><b>bold?</b>"


def make_run(tmp_path: Path, n_prompts: int | None = None) -> Path:
    rows = (PROMPTS if n_prompts is None
            else [{"id": f"p{i}", "prompt": f"Prompt number {i}?"} for i in range(n_prompts)])
    tmp_path.mkdir(parents=True, exist_ok=True)
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = {"name": "r", "output_dir": str(tmp_path / "results"), "benchmark": {"name": "file", "path": str(prompts)},
            "models": [{"name": MODELS[0], "backend": "scripted", "model": "echo"},
                       {"name": MODELS[1], "backend": "scripted", "model": f"fixed:{SHORT}"}],
            "baselines": [MODELS[1]], "judge": {"backend": "scripted", "model": "fixed:Verdict: A"}}
    out = run_cli("run", str(write_config(tmp_path / "c.yaml", data)), "--no-progress")
    assert out.returncode == 0, out.stderr
    return tmp_path / "results" / "r"


class Server:
    """`lima-eval annotate RUN ... --port 0` in a subprocess; the links it prints."""

    def __init__(self, run_dir: Path, *args: str):
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen([sys.executable, "-m", "lima_eval.cli", "annotate", str(run_dir), "--port", "0",
                                      *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.links: dict[str, str] = {}
        for line in self.proc.stdout:  # type: ignore[union-attr]
            m = re.match(r"(annotator (\S+)|admin): (\S+)", line)
            if m:
                self.links[m.group(2) or "admin"] = m.group(3)
            if line.startswith(("admin:", "(the links")):
                break
        assert self.links, self.proc.stderr.read() if self.proc.poll() is not None else "no links"  # type: ignore[union-attr]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=20)

    def stopped_stderr(self) -> str:
        """What the server said on stderr, once stopped."""
        self.stop()
        return self.proc.stderr.read()  # type: ignore[union-attr]


@pytest.fixture
def served(tmp_path):
    run_dir = make_run(tmp_path)
    server = Server(run_dir, "--annotators", "2", "--overlap", "2")
    yield run_dir, server
    server.stop()


def request(url: str, body: dict | None = None, headers: dict | None = None, method: str | None = None):
    """(status, headers, text) of one request, errors included."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method or ("POST" if data else "GET"))
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def csrf_of(link: str) -> str:
    return re.search(r'name="csrf" content="([^"]+)"', request(link)[2]).group(1)


def post(link: str, path: str, body: dict, **headers: str):
    h = {"Content-Type": "application/json", "X-CSRF-Token": csrf_of(link)} | headers
    return request(link + path, body, h)


def model_of(answer_text: str) -> str:
    return MODELS[1] if answer_text.startswith("Short & plain") else MODELS[0]


def test_two_annotators_label_in_chromium_by_clicks_and_keys(served, chromium, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    run_dir, server = served
    clicked: list[tuple[str, str, str]] = []  # (annotator, prompt text, the model they chose or 'tie')
    bodies: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        for name, how in (("ann1", "click"), ("ann2", "keys")):
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            dialogs: list[str] = []
            page.on("dialog", lambda d, seen=dialogs: (seen.append(d.message), d.dismiss()))

            def capture(route):  # every body the annotator's browser receives, as it arrives
                response = route.fetch()
                bodies.append(response.text())
                route.fulfill(response=response)

            page.route("**/*", capture)
            page.goto(server.links[name])
            page.wait_for_selector("article.answer")
            if name == "ann1":
                page.screenshot(path=str(tmp_path / "annotate-page.png"), full_page=True)
            for step in range(4):
                if step == 2:  # reloading resumes the queue where it was
                    page.reload()
                    page.wait_for_selector("article.answer")
                    assert page.text_content("#count") == "2 / 4"
                prompt = page.text_content("pre.user")
                answers = page.locator("article.answer pre").all_text_contents()
                before = page.text_content("#count")
                # ann1 prefers the first answer, then neither; ann2 the second, by keyboard
                choice = ("1" if step % 2 == 0 else "0") if name == "ann1" else "2"
                if how == "click":
                    page.click(f"button[data-choice='{choice}']")
                else:
                    page.keyboard.press(choice)
                expect(page.locator("#count")).not_to_have_text(before)
                chosen = "tie" if choice == "0" else model_of(answers[int(choice) - 1])
                clicked.append((name, prompt, chosen))
            assert page.is_visible("#done")
            # Undo takes the last label back: the item returns, then gets labelled again (by key).
            page.keyboard.press("u")
            page.wait_for_selector("article.answer")
            assert page.text_content("#count") == "3 / 4"
            answers = page.locator("article.answer pre").all_text_contents()
            page.keyboard.press("1")
            page.wait_for_selector("#done:not([hidden])")
            clicked[-1] = (name, clicked[-1][1], model_of(answers[0]))
            # Model text stayed text: no script ran, the payload is shown as written.
            assert page.evaluate("window.pwned") is None and not dialogs
            if XSS in "".join(c[1] for c in clicked if c[0] == name):
                assert page.locator("img").count() == 0
            page.close()
        admin = browser.new_page(viewport={"width": 1200, "height": 1000})
        admin.goto(server.links["admin"])
        expect(admin.locator("#people tr")).to_have_count(3)
        admin.screenshot(path=str(tmp_path / "annotate-admin.png"), full_page=True)
        people = admin.locator("#people tr").all_text_contents()
        browser.close()
    assert any("ann1" in r and "4 / 4" in r for r in people)
    # Model names never reached an annotator's browser (every response body of both pages, on the wire).
    assert bodies and not any(m in b for b in bodies for m in MODELS)
    # The labels on disk are the clicks, in model terms.
    prompt_of = {r["prompt"]: r["id"] for r in PROMPTS}
    stored = [json.loads(x) for x in (run_dir / "human_judgments.jsonl").read_text().splitlines()]
    live = {}
    for rec in stored:
        live[rec["id"]] = rec
    live = {k: v for k, v in live.items() if v["error_kind"] != "withdrawn"}
    want = {(n, prompt_of[p], c) for n, p, c in clicked}
    got = {(r["annotator"], r["prompt_id"], r["model_a"] if r["verdict"] == "a" else r["model_b"]
            if r["verdict"] == "b" else "tie") for r in live.values()}
    assert got == want and len(live) == 8
    # The report's human panel counts them at once (no import step), and the export says the same.
    out = run_cli("report", str(run_dir))
    assert out.returncode == 0, out.stderr
    summary = json.loads((run_dir / "report" / "summary.json").read_text())
    human = next(r for r in summary["rows"] if r["judge"] == "human")
    wins = sum(1 for _, _, c in want if c == MODELS[0])
    ties = sum(1 for _, _, c in want if c == "tie")
    assert (human["win"], human["tie"], human["loss"]) == (wins, ties, 8 - wins - ties)
    status, _, text = request(server.links["admin"] + "/export.csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert status == 200 and {(r["annotator"], r["prompt_id"], r["model_a"] if r["label"] == "a" else r["model_b"]
                               if r["label"] == "b" else "tie") for r in rows} == want
    # ... and imports cleanly into another copy of the run as the same labels.
    assert (tmp_path / "annotate-page.png").read_bytes()[:4] == b"\x89PNG"


def test_access_is_per_token_and_cross_site_posts_are_refused(served):
    run_dir, server = served
    one, two, admin = server.links["ann1"], server.links["ann2"], server.links["admin"]
    root = one.rsplit("/a/", 1)[0]
    for url in (root + "/a/not-a-token", root + "/a/not-a-token/next", root + "/admin/not-a-token/status",
                root + "/admin/" + one.rsplit("/", 1)[1] + "/status", root + "/a/" + admin.rsplit("/", 1)[1]):
        assert request(url)[0] == 403, url
    status, headers, _ = request(one)
    assert status == 200 and "script-src 'self'" in headers["content-security-policy"]
    assert headers["referrer-policy"] == "no-referrer" and headers["x-content-type-options"] == "nosniff"
    item2 = json.loads(request(two + "/next")[2])["item"]
    item1 = json.loads(request(one + "/next")[2])["item"]
    assert item1 != item2  # opaque ids are per person
    # One annotator cannot write another's item, nor with another's CSRF token.
    assert post(one, "/label", {"item": item2, "choice": "1"})[0] == 409
    assert request(one + "/label", {"item": item1, "choice": "1"},
                   {"Content-Type": "application/json", "X-CSRF-Token": csrf_of(two)})[0] == 403
    # Cross-site: another origin, a form post, no CSRF token: all refused, nothing written.
    assert post(one, "/label", {"item": item1, "choice": "1"}, Origin="http://evil.example")[0] == 403
    assert post(one, "/label", {"item": item1, "choice": "1"}, **{"Sec-Fetch-Site": "cross-site"})[0] == 403
    assert request(one + "/label", {"item": item1, "choice": "1"}, {"Content-Type": "application/json"})[0] == 403
    form = urllib.request.Request(one + "/label", data=b"item=x&choice=1", method="POST",
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(form, timeout=10)
    assert err.value.code == 403
    assert not (run_dir / "human_judgments.jsonl").exists()
    # Bad bodies are 400s, a finished item 409, and the annotator never sees another's labels.
    assert post(one, "/label", {"item": item1, "choice": "7"})[0] == 400
    assert post(one, "/label", {"item": item1, "choice": "1"})[0] == 200
    assert post(one, "/label", {"item": item1, "choice": "2"})[0] == 409
    assert post(one, "/skip", {"item": "x", "reason": "bored"})[0] == 409
    view = request(two + "/next")[2]
    assert "ann1" not in view and json.loads(view)["done"] == 0


def test_a_kill_minus_9_under_load_loses_no_acknowledged_label(tmp_path):
    run_dir = make_run(tmp_path, n_prompts=60)
    server = Server(run_dir, "--annotators", "4", "--overlap", "4")
    acked: list[tuple[str, str]] = []
    lock = threading.Lock()

    def work(name: str) -> None:
        link = server.links[name]
        csrf = csrf_of(link)
        while True:
            try:
                view = json.loads(request(link + "/next")[2])
                if view["item"] is None:
                    return
                status, _, _ = request(link + "/label", {"item": view["item"], "choice": "1"},
                                       {"Content-Type": "application/json", "X-CSRF-Token": csrf})
            except (OSError, ValueError):
                return  # the server is gone
            if status == 200:
                with lock:
                    acked.append((name, view["item"]))

    threads = [threading.Thread(target=work, args=(n,)) for n in ("ann1", "ann2", "ann3", "ann4")]
    for t in threads:
        t.start()
    while len(acked) < 60:
        threading.Event().wait(0.01)
    server.stop(signal.SIGKILL)
    for t in threads:
        t.join(timeout=30)
    n_acked = len(acked)
    assert 60 <= n_acked < 240
    again = Server(run_dir)  # a restart resumes the same session
    try:
        done = sum(json.loads(request(again.links[n] + "/next")[2])["done"] for n in ("ann1", "ann2", "ann3", "ann4"))
    finally:
        again.stop()
    lines = [json.loads(x) for x in (run_dir / "human_judgments.jsonl").read_text().splitlines() if x.strip()]
    assert done >= n_acked and len({r["id"] for r in lines}) >= n_acked
    assert len(lines) == len({r["id"] for r in lines})  # no label written twice


def test_a_jury_queue_gold_items_and_the_absolute_task(tmp_path):
    run_dir = make_run(tmp_path)
    queue = tmp_path / "queue.csv"
    queue.write_text(f"prompt_id,model_a,model_b,label,annotator,comment\nq2,{MODELS[0]},{MODELS[1]},,,\n"
                     f"q3,{MODELS[0]},{MODELS[1]},,,\n")
    gold = tmp_path / "gold.csv"
    gold.write_text(f"prompt_id,model_a,model_b,label\nq4,{MODELS[0]},{MODELS[1]},b\n")
    server = Server(run_dir, "--queue", str(queue), "--gold", str(gold), "--annotators", "1")
    try:
        link = server.links["ann1"]
        seen = []
        while True:
            view = json.loads(request(link + "/next")[2])
            if view["item"] is None:
                break
            text = view["turns"][0]["user"]
            seen.append(text)
            first_is_short = view["turns"][0]["answers"][0].startswith("Short")
            choice = "1" if first_is_short else "2"  # always the short answer (model b): right on the gold item
            assert post(link, "/label", {"item": view["item"], "choice": choice})[0] == 200
        assert sorted(seen) == sorted(r["prompt"] for r in PROMPTS if r["id"] in ("q2", "q3", "q4"))
        status = json.loads(request(server.links["admin"] + "/status")[2])
        assert status["items"] == 2 and status["gold_items"] == 1 and status["source"].startswith("queue:")
        (person,) = status["annotators"]
        assert (person["labels"], person["gold_answered"], person["gold_accuracy"]) == (2, 1, 1.0)
    finally:
        said = server.stopped_stderr()
    assert "(pairwise, 3 items incl. 1 gold, overlap 1)" in said, said
    stored = {json.loads(x)["prompt_id"] for x in (run_dir / "human_judgments.jsonl").read_text().splitlines()}
    assert stored == {"q2", "q3"}  # the gold answer is not a label of the run

    other = make_run(tmp_path / "abs")
    server = Server(other, "--task", "absolute", "--annotators", "2", "--overlap", "2")
    try:
        for name in ("ann1", "ann2"):
            link = server.links[name]
            while (view := json.loads(request(link + "/next")[2]))["item"] is not None:
                assert len(view["turns"][0]["answers"]) == 1
                grade = "fail" if view["turns"][0]["answers"][0].startswith("Short") else "pass"
                assert post(link, "/label", {"item": view["item"], "choice": grade})[0] == 200
        status = json.loads(request(server.links["admin"] + "/status")[2])
        assert status["labels"] == 16 and status["agreement"]["fleiss_kappa"] == 1.0
    finally:
        server.stop()
    ratings = [json.loads(x) for x in (other / "human_ratings.jsonl").read_text().splitlines()]
    assert {(r["model"], r["label"]) for r in ratings} == {(MODELS[1], "fail"), (MODELS[0], "pass")}


def bad_case(tmp_path, args, files=None):
    run_dir = make_run(tmp_path)
    for name, text in (files or {}).items():
        (tmp_path / name).write_text(text)
    args = [a.replace("TMP", str(tmp_path)) for a in args]
    out = run_cli("annotate", str(run_dir), "--port", "0", *args, timeout=60)
    return run_dir, out


@pytest.mark.parametrize("args,files,message", [
    (["--overlap", "3", "--annotators", "2"], None, "--overlap: 3 is out of range"),
    (["--annotators", "2", "--tokens", "TMP/t.txt"], {"t.txt": "a,aaaaaaaaaaaaaaaaaaaa\n"}, "give one of them"),
    (["--tokens", "TMP/t.txt"], {"t.txt": "alice\n"}, "t.txt, line 1: expected NAME,TOKEN"),
    (["--tokens", "TMP/t.txt"], {"t.txt": "al/ice,aaaaaaaaaaaaaaaaaaaa\n"}, "line 1, field 'annotator'"),
    (["--tokens", "TMP/t.txt"], {"t.txt": "alice,short\n"}, "line 1, field 'token'"),
    (["--tokens", "TMP/t.txt"], {"t.txt": "a,aaaaaaaaaaaaaaaaaaaa\nb,aaaaaaaaaaaaaaaaaaaa\n"},
     "line 2, field 'token': this token is already another annotator's"),
    (["--tokens", "TMP/t.txt"], {"t.txt": "a,aaaaaaaaaaaaaaaaaaaa\na,bbbbbbbbbbbbbbbbbbbb\n"}, "listed twice"),
    (["--tokens", "TMP/t.txt"], {"t.txt": ""}, "no annotators"),
    (["--queue", "TMP/q.csv"], {"q.csv": "prompt_id,model_a,model_b\nq9,a,b\n"}, "q.csv, line 2, field 'prompt_id'"),
    (["--queue", "TMP/q.csv"], {"q.csv": f"prompt_id,model_a,model_b\nq1,{MODELS[0]},ghost\n"}, "field 'model_b'"),
    (["--queue", "TMP/q.csv"], {"q.csv": "prompt_id,model_a\n"}, "missing column(s) model_b"),
    (["--queue", "TMP/q.csv", "--task", "absolute"], {"q.csv": "prompt_id,model_a,model_b\n"}, "use --task pairwise"),
    (["--gold", "TMP/g.csv"], {"g.csv": f"prompt_id,model_a,model_b,label\nq1,{MODELS[0]},{MODELS[1]},maybe\n"},
     "g.csv, line 2, field 'label'"),
    (["--gold", "TMP/g.csv"], {"g.csv": "prompt_id,model,label\nq1,x,pass\n"}, "missing column(s) model_a"),
    (["--gold", "TMP/g.csv", "--task", "absolute"], {"g.csv": f"prompt_id,model,label\nq1,{MODELS[0]},5\n"},
     "is not one of fail, pass, excellent"),
    (["--host", "256.1.1.1"], None, "256.1.1.1"),
])
def test_bad_annotate_input_is_named_before_anything_is_written(tmp_path, args, files, message):
    run_dir, out = bad_case(tmp_path, args, files)
    assert out.returncode != 0 and message in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert not (run_dir / "annotate").exists()


def test_a_second_server_and_changed_options_are_refused(served):
    run_dir, server = served
    second = run_cli("annotate", str(run_dir), "--port", "0", timeout=60)
    assert second.returncode != 0 and "is being written by" in second.stderr
    server.stop()
    changed = run_cli("annotate", str(run_dir), "--port", "0", "--overlap", "1", timeout=60)
    assert changed.returncode != 0 and "holds a labelling session already" in changed.stderr
    assert "without --overlap" in changed.stderr
    missing = run_cli("annotate", str(run_dir / "nope"), "--port", "0", timeout=60)
    assert missing.returncode != 0 and "not a lima-eval run directory" in missing.stderr


def test_port_0_keeps_the_links_of_the_last_start_while_its_port_is_free(tmp_path):
    """--port 0 used to pick a new port, so new links, on every restart."""
    run_dir = make_run(tmp_path)
    first = Server(run_dir, "--annotators", "2")
    said = first.stopped_stderr()
    port = urllib.parse.urlsplit(first.links["admin"]).port
    assert f"--port 0: a free port, {port}" in said, said
    assert "(pairwise, 4 items, overlap 1)" in said and "gold" not in said, said  # no gold items, none named
    again = Server(run_dir)
    assert again.links == first.links
    assert f"--port 0: port {port} again, as the last time (the same links)" in again.stopped_stderr()
    with socket.socket() as taken:  # someone else listens there now: a new free port, and it says so
        taken.bind(("127.0.0.1", port))
        taken.listen()
        moved = Server(run_dir)
        said = moved.stopped_stderr()
    new_port = urllib.parse.urlsplit(moved.links["admin"]).port
    assert new_port != port and moved.links["admin"].replace(str(new_port), str(port)) == first.links["admin"]
    assert f"--port 0: port {port} of the last time is taken; a new free one, {new_port} (new links)" in said, said
    third = Server(run_dir)  # the port it moved to is the one remembered now
    assert third.links == moved.links
    third.stop()


def test_a_restart_repairs_what_a_crash_between_the_two_writes_left(tmp_path):
    """The event log is written first. A label whose store line was lost is written again, and an undone label
    whose withdrawal was lost is withdrawn again, when the session is loaded."""
    from lima_eval.annotate.session import Session
    from lima_eval.store import RunStore

    run_dir = make_run(tmp_path)
    s = Session.create(run_dir, "pairwise", [("ann1", "")], 1)
    for choice in ("1", "2", "0"):
        s.label("ann1", s.view("ann1")["item"], choice)
    assert s.undo("ann1")
    store = run_dir / "human_judgments.jsonl"
    lines = store.read_text().splitlines()
    assert len(lines) == 4 and json.loads(lines[-1])["error_kind"] == "withdrawn"
    store.write_text(lines[0] + "\n" + lines[2] + "\n")  # label 2 and the withdrawal of label 3 lost
    Session.load(run_dir)
    live = RunStore(run_dir).judgments(human=True)
    assert len(live) == 2 and all(j.verdict for j in live.values())
    assert Session.load(run_dir).view("ann1")["done"] == 2
    assert len(store.read_text().splitlines()) == 4  # repaired once, not again


def test_skips_flags_and_undo_over_http_and_multi_turn_items(tmp_path):
    """Skip, can't judge and offensive take an item out of the queue without a label and are counted on the
    admin page; undo brings the last one back. A two-turn prompt shows both turns, each side's own answers."""
    questions = tmp_path / "q.jsonl"
    questions.write_text("".join(json.dumps({"question_id": i, "turns": [f"First {i}?", f"Then {i}?"]}) + "\n"
                                 for i in range(4)))
    data = {"name": "mt", "output_dir": str(tmp_path / "results"),
            "benchmark": {"name": "mt-bench", "path": str(questions)},
            "models": [{"name": MODELS[0], "backend": "scripted", "model": "echo"},
                       {"name": MODELS[1], "backend": "scripted", "model": f"fixed:{SHORT}"}],
            "baselines": [MODELS[1]], "judge": {"name": "mt-bench-pair", "backend": "scripted",
                                                "model": "fixed:[[A]]"}}
    out = run_cli("run", str(write_config(tmp_path / "c.yaml", data)), "--no-progress")
    assert out.returncode == 0, out.stderr
    run_dir = tmp_path / "results" / "mt"
    server = Server(run_dir)
    try:
        link = server.links["ann1"]
        view = json.loads(request(link + "/next")[2])
        turns = view["turns"]
        n = re.search(r"First (\d)", turns[0]["user"]).group(1)
        assert [t["user"] for t in turns] == [f"First {n}?", f"Then {n}?"]
        echo = 0 if turns[0]["answers"][0] == f"First {n}?" else 1  # which side is the echoing model
        assert [t["answers"][echo] for t in turns] == [f"First {n}?", f"Then {n}?"]
        assert [t["answers"][1 - echo] for t in turns] == [SHORT, SHORT]
        for reason in ("skip", "cannot-judge", "offensive"):
            item = json.loads(request(link + "/next")[2])["item"]
            assert post(link, "/skip", {"item": item, "reason": reason})[0] == 200
        assert post(link, "/undo", {})[0] == 200  # the offensive flag is taken back
        status = json.loads(request(server.links["admin"] + "/status")[2])
        (person,) = status["annotators"]
        assert person["skipped"] == {"skip": 1, "cannot-judge": 1, "offensive": 0} and person["done"] == 2
        assert person["labels"] == 0 and not (run_dir / "human_judgments.jsonl").exists()
        assert post(link, "/undo", {})[0] == 200 and post(link, "/undo", {})[0] == 200
        assert post(link, "/undo", {})[0] == 409  # nothing left to undo
    finally:
        server.stop()


@pytest.mark.parametrize("name,text,message", [
    ("session.json", '{"task": "pairwise"}', "session.json: not a readable labelling session (KeyError"),
    ("session.json", "[1, 2", "not a readable labelling session (JSONDecodeError"),
    ("events.jsonl", '{"annotator": "ann1"}\n', "events.jsonl, event 1: needs annotator, key and action"),
])
def test_a_damaged_session_is_one_line(tmp_path, name, text, message):
    run_dir = make_run(tmp_path)
    from lima_eval.annotate.session import Session

    Session.create(run_dir, "pairwise", [("ann1", "")], 1)
    (run_dir / "annotate" / name).write_text(text)
    out = run_cli("annotate", str(run_dir), "--port", "0", timeout=60)
    assert out.returncode != 0 and message in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(f.relative_to(folder)): f.read_bytes() for f in sorted(folder.rglob("*")) if f.is_file()}


def peak_rss(pid: int) -> int:
    """The process's peak resident memory in bytes (Linux: VmHWM)."""
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmHWM:\s+(\d+) kB", text, re.MULTILINE).group(1)) * 1024


def raw_post(link: str, path: str, head: dict[str, str], chunks) -> tuple[bytes, int]:
    """POST over a bare socket, sending `chunks` (bytes, as they are) until the server answers or hangs up:
    (what it answered, how many body bytes were sent by then)."""
    url = urllib.parse.urlsplit(link)
    lines = [f"POST {url.path}{path} HTTP/1.1", f"Host: {url.netloc}", "Content-Type: application/json",
             f"X-CSRF-Token: {csrf_of(link)}"] + [f"{k}: {v}" for k, v in head.items()]
    sent, reply = 0, b""
    with socket.create_connection((url.hostname, url.port), timeout=20) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        for chunk in chunks:
            if select.select([sock], [], [], 0)[0]:
                break  # the server has answered (or closed) before the body was all sent
            try:
                sock.sendall(chunk)
            except OSError:  # it hung up on us mid-body
                break
            sent += len(chunk)
        try:
            while data := sock.recv(65536):
                reply += data
        except OSError:
            pass
    return reply, sent


def post_bytes(link: str, path: str, body: bytes) -> tuple[int, str]:
    """(status, error) of a POST of these exact bytes, as the page would send them (JSON, its CSRF token)."""
    req = urllib.request.Request(link + path, data=body, method="POST",
                                 headers={"Content-Type": "application/json", "X-CSRF-Token": csrf_of(link)})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    return err.value.code, json.loads(err.value.read())["error"]


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def test_an_oversize_body_is_refused_with_413_before_it_is_read(served):
    """A body over 64 KiB is a 413 and nothing is written: a Content-Length over it is refused unread, and a
    chunked body is read only up to the limit (the server answers and hangs up mid-stream, memory flat)."""
    run_dir, server = served
    link = server.links["ann1"]
    item = json.loads(request(link + "/next")[2])["item"]
    before = snapshot(run_dir)
    label = json.dumps({"item": item, "choice": "1"})[:-1].encode()  # a valid label, once closed by "}"
    # Declared and sent: 64 KiB + 1 byte, stored if the server read it.
    status, error = post_bytes(link, "/label", label + b" " * (64 * 1024 - len(label)) + b"}")
    assert status == 413 and error == "request body over 64 KiB"
    # Issue 25's 100,000 levels of [[[...]]]: too big to be parsed at all (a 500 before).
    assert post_bytes(link, "/label", b"[" * 100_000 + b"]" * 100_000)[0] == 413
    # Declared 256 MB, none of it sent: the answer comes at once.
    reply, _ = raw_post(link, "/label", {"Content-Length": str(256 << 20)}, [])
    assert reply.startswith(b"HTTP/1.1 413 "), reply[:200]
    # Chunked, no length: 128 MB offered in 64 KiB chunks; the server stops reading after the first 64 KiB.
    start = peak_rss(server.proc.pid)
    pad = chunk(b" " * 65536)
    stream = [chunk(label)] + [pad] * 2048 + [chunk(b"}") + b"0\r\n\r\n"]
    reply, sent = raw_post(link, "/label", {"Transfer-Encoding": "chunked"}, stream)
    assert reply.startswith(b"HTTP/1.1 413 "), reply[:200]
    assert sent < 32 << 20  # it answered long before the client finished (socket buffers hold a few MB)
    assert peak_rss(server.proc.pid) - start < 32 << 20
    assert snapshot(run_dir) == before
    # The server is still serving, and a label of normal size is taken.
    assert post(link, "/label", {"item": item, "choice": "1"})[0] == 200


BAD_BODIES = [
    (b"[" * 30000 + b"]" * 30000, "JSON nested too deeply"),  # 60 KB: under the size limit, so parsed
    (b'{"item": ' + b"[" * 30000 + b"]" * 30000 + b"}", "JSON nested too deeply"),
    (b'{"item": "x", "choice": "1", "comment": "' + b"c" * 5000 + b'"}', 'field "comment": unknown here'),
    (b'{"item": "' + b"i" * 65 + b'", "choice": "1"}', "field 'item': longer than 64 characters"),
    (b'{"item": "x", "choice": "1' + b"1" * 64 + b'"}', "field 'choice': longer than 64 characters"),
    (b'{"item": ["x"], "choice": "1"}', "field 'item': expected a string"),
    (b'{"item": "x", "choice": 1}', "field 'choice': expected a string"),
    (b'{"item": "x"', "not valid JSON"),
    (b'{"item": "\xff"}', "not valid JSON"),
    (b'"label"', "expected a JSON object"),
]


def test_a_malformed_body_is_a_400_naming_the_problem(served):
    """Deep nesting, unknown or overlong fields, non-strings, broken JSON: a one-line 400, nothing written."""
    run_dir, server = served
    link = server.links["ann1"]
    before = snapshot(run_dir)
    for body, message in BAD_BODIES:
        status, error = post_bytes(link, "/label", body)
        assert status == 400 and message in error and "\n" not in error, (body[:40], error)
    assert snapshot(run_dir) == before
    assert request(server.links["admin"] + "/status")[0] == 200  # still serving


def import_labels(run_dir: Path, rows: list[tuple[str, str]], tmp_path: Path) -> subprocess.CompletedProcess:
    """`lima-eval import-human` of (prompt id, label) rows by ann1 on the run's pair."""
    path = tmp_path / f"labels-{len(list(tmp_path.glob('labels-*')))}.csv"
    path.write_text("prompt_id,model_a,model_b,label,annotator\n"
                    + "".join(f"{pid},{MODELS[0]},{MODELS[1]},{label},ann1\n" for pid, label in rows))
    return run_cli("import-human", str(run_dir), str(path), timeout=60)


def test_a_label_imported_with_import_human_is_never_replaced(tmp_path):
    """The app refuses (409) to label an item its annotator already labelled through import-human, before the
    session or during it, and a restart's repair never withdraws such a label; a label given in the app may be
    revised there (undo, then label again)."""
    from lima_eval.store import RunStore

    run_dir = make_run(tmp_path)
    prompt_of = {r["prompt"]: r["id"] for r in PROMPTS}
    assert import_labels(run_dir, [("q1", "a")], tmp_path).returncode == 0  # before the session
    server = Server(run_dir, "--annotators", "1")
    store = run_dir / "human_judgments.jsonl"
    try:
        link = server.links["ann1"]
        assert import_labels(run_dir, [("q3", "b")], tmp_path).returncode == 0  # during it
        refused = []
        while (view := json.loads(request(link + "/next")[2]))["item"] is not None:
            item, pid = view["item"], prompt_of[view["turns"][0]["user"]]
            if pid in ("q1", "q3"):
                before = store.read_bytes()
                status, _, text = post(link, "/label", {"item": item, "choice": "0"})
                error = json.loads(text)["error"]
                assert status == 409 and "already has a label by 'ann1' imported with lima-eval" in error
                assert "human_judgments.jsonl" in error and not any(m in error for m in MODELS)
                assert store.read_bytes() == before
                refused.append(pid)
                assert post(link, "/skip", {"item": item, "reason": "skip"})[0] == 200
            elif pid == "q2":  # labelled in the app, undone, then imported differently: that import stands
                assert post(link, "/label", {"item": item, "choice": "0"})[0] == 200
                assert post(link, "/undo", {})[0] == 200
                assert import_labels(run_dir, [("q2", "a")], tmp_path).returncode == 0
                status, _, text = post(link, "/label", {"item": item, "choice": "0"})
                assert status == 409 and "import-human" in json.loads(text)["error"]
                assert post(link, "/skip", {"item": item, "reason": "skip"})[0] == 200
            else:  # an app label revised in the app
                assert post(link, "/label", {"item": item, "choice": "0"})[0] == 200
                assert post(link, "/undo", {})[0] == 200
                assert post(link, "/label", {"item": item, "choice": "1"})[0] == 200
        assert sorted(refused) == ["q1", "q3"]
    finally:
        server.stop()
    Server(run_dir).stop()  # a restart replays the session (and repairs the store)
    live = {j.prompt_id: j for j in RunStore(run_dir).judgments(human=True).values()}
    assert {p: (j.verdict, j.comment) for p, j in live.items() if p != "q4"} == {
        "q1": ("a", None), "q2": ("a", None), "q3": ("b", None)}
    assert live["q4"].comment == "labelling app" and live["q4"].verdict != "tie"
