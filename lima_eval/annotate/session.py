"""A labelling session of a run: the items, who labels what, in which order, and every action taken (docs/annotate.md).

RUN/annotate/ holds:
- session.json: the task, the frozen item list, each annotator's shuffled queue (with the gold items mixed in),
  the SHA-256 of every access token (never the tokens) and a secret for opaque item ids and the CSRF tokens;
- tokens.json (mode 0600): the tokens themselves, so the command can print the links again;
- events.jsonl: every label, skip, flag, gold answer and undo, appended and fsynced before the browser is told.
Labels also go straight into the run's human label store (human_judgments.jsonl / human_ratings.jsonl) through
the importer's checks, so `lima-eval report` shows them at once; an undone label is withdrawn there. A label
that the session did not write (one imported with `lima-eval import-human`) is never replaced nor withdrawn.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
import random
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lima_eval.errors import ConfigError, InputError, StoreError
from lima_eval.inputs import csv_rows, read_text
from lima_eval.judging.human import LabelError, _unquoted, human_id, pair_label, rating_label
from lima_eval.records import Judgment, Rating, content_id, from_dict
from lima_eval.run import Run
from lima_eval.scales import Absolute, scale
from lima_eval.store import HUMAN, HUMAN_RATINGS, WITHDRAWN, RunStore, append_jsonl, read_jsonl

FOLDER, SESSION, TOKENS, EVENTS = "annotate", "session.json", "tokens.json", "events.jsonl"
TASKS = ("pairwise", "absolute")
PAIR_CHOICES = {"1": "first", "2": "second", "0": "neither"}
ABSOLUTE_CHOICES = Absolute.labels
SKIP_REASONS = ("skip", "cannot-judge", "offensive")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


@dataclass(frozen=True)
class Item:
    """One thing to label: a pair of models' answers to a prompt (pairwise) or one model's answer (absolute).
    A gold item carries the label it must get."""

    key: str
    prompt_id: str
    models: tuple[str, ...]
    gold: str | None = None


@dataclass
class Action:
    seq: int
    annotator: str
    key: str
    action: str  # label | skip | gold | undo
    value: str | None = None  # the label in model terms (a / b / tie, or fail / pass / excellent), or the reason
    shown_first: str | None = None
    undone: bool = False


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def read_tokens(path: Path) -> list[tuple[str, str]]:
    """NAME,TOKEN per line (a first line `annotator,token` is a header); names and tokens checked."""
    out: list[tuple[str, str]] = []
    for n, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip() or (n == 1 and line.replace(" ", "").lower() == "annotator,token"):
            continue
        name, sep, token = (x.strip() for x in line.partition(","))
        if not sep:
            raise InputError(path, "expected NAME,TOKEN", line=n)
        if not NAME.match(name):
            raise InputError(path, f"{name!r} is not an annotator name (letters, digits, _ . @ -; up to 64)",
                             line=n, field="annotator")
        if len(token) < 16 or not re.fullmatch(r"[A-Za-z0-9_-]+", token):
            raise InputError(path, "a token is at least 16 characters of A-Z a-z 0-9 _ -", line=n, field="token")
        if name in [x for x, _ in out]:
            raise InputError(path, f"annotator '{name}' is listed twice", line=n, field="annotator")
        if token in [t for _, t in out]:
            raise InputError(path, "this token is already another annotator's", line=n, field="token")
        out.append((name, token))
    if not out:
        raise InputError(path, "no annotators (expected NAME,TOKEN lines)", line=1)
    return out


@dataclass
class Session:
    """A run's labelling session, loaded from RUN/annotate/ (see the module docstring)."""

    run_dir: Path
    task: str
    overlap: int
    items: dict[str, Item]
    queues: dict[str, list[str]]  # annotator -> item keys in the order shown
    token_hashes: dict[str, str]  # sha256(token) -> annotator ("" for the admin)
    secret: str
    seed: int
    source: str
    actions: list[Action] = field(default_factory=list)
    queued: int = 0  # writes queued so far (batch mode) ...
    durable: int = 0  # ... and how many of them are on disk
    _pending: list[tuple[Path, list[Any]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- creating and loading ---------------------------------------------------------------------------

    @classmethod
    def create(cls, run_dir: Path, task: str = "pairwise", annotators: list[tuple[str, str]] | None = None,
               overlap: int = 1, queue: Path | None = None, gold: Path | None = None, seed: int = 0) -> Session:
        """Freeze the item list and the queues, make the tokens (unless given), and write the session."""
        if task not in TASKS:
            raise ConfigError(f"--task: '{task}' is not one of {', '.join(TASKS)}")
        run = Run(run_dir)
        people = annotators or []
        if not people:
            raise ConfigError("--annotators: at least one annotator")
        if not 1 <= overlap <= len(people):
            raise ConfigError(f"--overlap: {overlap} is out of range (1 to the {len(people)} annotator(s))")
        answers = run.answers()
        prompts = {p.id: p for p in run.prompts}
        models = {m.name for m in run.config.models}
        if queue is not None:
            if task != "pairwise":
                raise ConfigError("--queue: a human queue lists pairs; use --task pairwise")
            pairs = _queue_pairs(queue, prompts, models)
            source = f"queue:{queue}"
        elif task == "pairwise":
            pairs = [(p.id, (m, b)) for m, b in run.config.pairs() for p in run.prompts]
            source = "run"
        else:
            pairs = [(p.id, (m.name,)) for m in run.config.models for p in run.prompts]
            source = "run"

        def answered(pid: str, ms: tuple[str, ...]) -> bool:
            turns = len(prompts[pid].user_turns)
            return all((pid, m, t) in answers for m in ms for t in range(turns))

        items = {}
        for pid, ms in pairs:
            if answered(pid, ms):
                key = content_id("annotate-item", pid, ms)
                items[key] = Item(key, pid, ms)
        if not items:
            raise ConfigError(f"{run_dir}: nothing to label (no {task} item has all its answers)")
        golds = _gold_items(gold, task, prompts, models, answered) if gold is not None else []
        names = [n for n, _ in people]
        queues: dict[str, list[str]] = {n: [] for n in names}
        for i, key in enumerate(sorted(items)):  # each item to `overlap` distinct people, the load balanced
            for j in range(overlap):
                queues[names[(i * overlap + j) % len(names)]].append(key)
        for name in names:
            rng = random.Random(content_id("annotate-shuffle", seed, name))
            rng.shuffle(queues[name])
            for g in golds:  # every gold item, each at a seeded place in every queue
                queues[name].insert(rng.randint(0, len(queues[name])), g.key)
        admin = secrets.token_urlsafe(24)
        tokens = {n: t or secrets.token_urlsafe(24) for n, t in people}
        folder = run_dir / FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        data = {"task": task, "overlap": overlap, "seed": seed, "source": source,
                "created": time.strftime("%Y-%m-%d %H:%M:%S"), "secret": secrets.token_hex(32),
                "tokens_sha256": {_hash(t): n for n, t in tokens.items()} | {_hash(admin): ""},
                "items": [{"key": i.key, "prompt_id": i.prompt_id, "models": list(i.models)} for i in items.values()],
                "gold": [{"key": g.key, "prompt_id": g.prompt_id, "models": list(g.models), "label": g.gold}
                         for g in golds],
                "queues": queues}
        secret_file = folder / TOKENS
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"admin": admin, "annotators": tokens}, f, indent=2)
        tmp = folder / (SESSION + ".tmp")
        tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
        tmp.replace(folder / SESSION)
        return cls.load(run_dir)

    @classmethod
    def load(cls, run_dir: Path) -> Session:
        path = Path(run_dir) / FOLDER / SESSION
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            items = {d["key"]: Item(d["key"], d["prompt_id"], tuple(d["models"])) for d in data["items"]}
            items |= {d["key"]: Item(d["key"], d["prompt_id"], tuple(d["models"]), d["label"]) for d in data["gold"]}
            s = cls(run_dir=Path(run_dir), task=data["task"], overlap=data["overlap"], items=items,
                    queues=data["queues"], token_hashes=data["tokens_sha256"], secret=data["secret"],
                    seed=data["seed"], source=data["source"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path}: not a readable labelling session ({type(exc).__name__}: {exc}); move "
                              f"{path.parent} away to start a new one") from None
        s._replay()
        return s

    def tokens(self) -> dict[str, Any]:
        """The tokens as the command made them ({} when tokens.json is gone)."""
        try:
            return json.loads((self.run_dir / FOLDER / TOKENS).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    # --- who is asking ------------------------------------------------------------------------------------

    def who(self, token: str) -> str | None:
        """The annotator a token belongs to ("" for the admin), or None."""
        h = _hash(token)
        for known, name in self.token_hashes.items():
            if hmac.compare_digest(known, h):
                return name
        return None

    def csrf(self, token: str) -> str:
        return hmac.new(self.secret.encode(), b"csrf:" + token.encode(), hashlib.sha256).hexdigest()

    def opaque(self, annotator: str, key: str) -> str:
        """The id an annotator's browser knows an item by (tells nothing about the models)."""
        return hmac.new(self.secret.encode(), f"item:{annotator}:{key}".encode(), hashlib.sha256).hexdigest()[:24]

    def first_shown(self, annotator: str, key: str) -> str:
        """Which model ("a" / "b") this annotator sees as Answer 1: a coin flip seeded per item and person."""
        return "a" if int(content_id("annotate-order", self.seed, annotator, key), 16) % 2 == 0 else "b"

    # --- state ----------------------------------------------------------------------------------------------

    def _replay(self) -> None:
        """Read the run once (prompts, answers, names) and the actions from events.jsonl; a label acknowledged
        but missing from the human store (a crash between the two writes) is written there again, and an
        undone one still there is withdrawn again (unless what is there now is not the session's)."""
        run = Run(self.run_dir)
        self._prompts = {p.id: p for p in run.prompts}
        self._answers = run.answers()
        self._models = {m.name for m in run.config.models}
        self._stack: dict[str, list[Action]] = {n: [] for n in self.queues}  # live actions, oldest first
        self._done: dict[str, dict[str, Action]] = {n: {} for n in self.queues}
        self._ids = {n: {self.opaque(n, k): k for k in keys} for n, keys in self.queues.items()}
        self.actions = []
        self._tail: tuple[int, int] = (0, 0)  # (inode, bytes read) of the human store, for _stored()
        self._latest: dict[str, dict[str, Any]] = {}
        events = self.run_dir / FOLDER / EVENTS
        for n, d in enumerate(read_jsonl(events), start=1):
            if not all(isinstance(d.get(k), str) for k in ("annotator", "key", "action")):
                raise StoreError(f"{events}, event {n}: needs annotator, key and action")
            self._apply(Action(seq=len(self.actions), annotator=d["annotator"], key=d["key"], action=d["action"],
                               value=d.get("value"), shown_first=d.get("shown_first")))
        live = {(a.annotator, a.key): a for a in self.actions if a.action == "label" and not a.undone}
        taken_back = {(a.annotator, a.key): a for a in self.actions if a.action == "label" and a.undone}
        if live or taken_back:
            store = self._human()
            fix = [self._record(a.annotator, a.key, a.value or "", a.shown_first) for k, a in live.items()
                   if self._record_id(*k) not in store]
            fix += [self._withdrawn(a) for k, a in taken_back.items()
                    if k not in live and self._mine(a.annotator, a.key, store.get(self._record_id(*k)))]
            if fix:
                self._write_labels(fix)

    def _apply(self, a: Action) -> None:
        self.actions.append(a)
        if a.annotator not in self._stack:
            return
        if a.action == "undo":
            if self._stack[a.annotator]:
                last = self._stack[a.annotator].pop()
                last.undone = True
                self._done[a.annotator].pop(last.key, None)
            return
        self._stack[a.annotator].append(a)
        self._done[a.annotator][a.key] = a

    def _last(self, annotator: str) -> Action | None:
        stack = self._stack.get(annotator) or []
        return stack[-1] if stack else None

    def next_item(self, annotator: str) -> Item | None:
        finished = self._done[annotator]
        return next((self.items[k] for k in self.queues[annotator] if k not in finished), None)

    def view(self, annotator: str) -> dict[str, Any]:
        """What the annotator's page shows next: never a model name."""
        total, finished = len(self.queues[annotator]), len(self._done[annotator])
        item = self.next_item(annotator)
        out: dict[str, Any] = {"task": self.task, "done": finished, "total": total,
                               "can_undo": self._last(annotator) is not None}
        if item is None:
            return out | {"item": None}
        prompt = self._prompts[item.prompt_id]
        models = list(item.models)
        if len(models) == 2 and self.first_shown(annotator, item.key) == "b":
            models.reverse()
        turns = [{"user": text, "answers": [self._answers[(prompt.id, m, t)].text for m in models]}
                 for t, text in enumerate(prompt.user_turns)]
        return out | {"item": self.opaque(annotator, item.key), "turns": turns}

    def _resolve(self, annotator: str, opaque: str) -> Item:
        key = self._ids.get(annotator, {}).get(str(opaque))
        if key is None:
            raise LookupError("not an item of yours")
        return self.items[key]

    # --- actions ---------------------------------------------------------------------------------------------

    def label(self, annotator: str, opaque: str, choice: str) -> None:
        """Record a label: to events.jsonl, then (not for gold items) the run's human label store."""
        item = self._resolve(annotator, opaque)
        if item.key in self._done[annotator]:
            raise LookupError("already labelled; undo it first")
        if self.task == "pairwise":
            if choice not in PAIR_CHOICES:
                raise ValueError(f"choice must be one of {', '.join(PAIR_CHOICES)}")
            first = self.first_shown(annotator, item.key)
            shown = PAIR_CHOICES[choice]
            value = "tie" if shown == "neither" else (first if shown == "first" else {"a": "b", "b": "a"}[first])
        else:
            if choice not in ABSOLUTE_CHOICES:
                raise ValueError(f"choice must be one of {', '.join(ABSOLUTE_CHOICES)}")
            first, value = None, choice
        action = "gold" if item.gold is not None else "label"
        record = None if action == "gold" else self._record(annotator, item.key, value, first)  # checked first
        prior = None if record is None else self._foreign(annotator, item.key)
        if prior is not None:
            how = ("given in an earlier labelling session" if prior.get("comment") == "labelling app"
                   else "imported with lima-eval import-human")
            raise LookupError(f"this item already has a label by '{annotator}' {how}, which the app never "
                              "replaces: skip the item, or ask the run's owner to delete its line from "
                              f"{self._store_file().name} to label it here")
        self._event(annotator, item.key, action, value, first)
        if record is not None:
            self._write_labels([record])

    def skip(self, annotator: str, opaque: str, reason: str) -> None:
        item = self._resolve(annotator, opaque)
        if reason not in SKIP_REASONS:
            raise ValueError(f"reason must be one of {', '.join(SKIP_REASONS)}")
        if item.key in self._done[annotator]:
            raise LookupError("already labelled; undo it first")
        self._event(annotator, item.key, "skip", reason, None)

    def undo(self, annotator: str) -> bool:
        """Take back this person's last action (a label is withdrawn from the human store). False: nothing to undo."""
        last = self._last(annotator)
        if last is None:
            return False
        self._event(annotator, last.key, "undo", None, None)
        if last.action == "label":
            self._write_labels([self._withdrawn(last)])
        return True

    def _withdrawn(self, a: Action) -> Judgment | Rating:
        """The record that takes a person's label back out of the human store (store.WITHDRAWN)."""

        rec = self._record(a.annotator, a.key, a.value or "", a.shown_first)
        why = "withdrawn in the labelling app"
        if isinstance(rec, Judgment):
            return dataclasses.replace(rec, verdict=None, error=why, error_kind=WITHDRAWN)
        return dataclasses.replace(rec, label=None, score=None, error=why, error_kind=WITHDRAWN)

    def _event(self, annotator: str, key: str, action: str, value: str | None, shown_first: str | None) -> None:
        self._append(self.run_dir / FOLDER / EVENTS,
                     [{"t": round(time.time(), 3), "annotator": annotator, "key": key, "action": action,
                       "value": value, "shown_first": shown_first}])
        self._apply(Action(len(self.actions), annotator, key, action, value, shown_first))

    # --- durability: written at once, or (the server) queued and flushed together ---------------------------

    def batch(self) -> None:
        """From now on writes are queued until flush(): the server acknowledges a label only after the flush
        that made it durable, and concurrent labels share one fsync per file."""
        self._batching = True

    def _append(self, path: Path, rows: list[Any]) -> None:
        if not getattr(self, "_batching", False):
            append_jsonl(path, rows)
            return
        with self._lock:
            self._pending.append((path, rows))
            self.queued += 1

    def flush(self) -> None:
        """Write everything queued, events before labels, each file fsynced once. On failure the rows stay
        queued (nothing acknowledged is lost; the caller reports the error)."""
        with self._lock:
            todo, self._pending = self._pending, []
            upto = self.queued
        by_file: dict[Path, list[Any]] = {}
        for path, rows in todo:
            by_file.setdefault(path, []).extend(rows)
        events = self.run_dir / FOLDER / EVENTS
        try:
            for path in sorted(by_file, key=lambda p: p != events):  # the event log first
                append_jsonl(path, by_file[path])
                del by_file[path]
        except BaseException:
            with self._lock:
                self._pending = [(p, rows) for p, rows in by_file.items()] + self._pending
            raise
        self.durable = max(self.durable, upto)

    # --- the human label store -------------------------------------------------------------------------

    def _record(self, annotator: str, key: str, value: str, shown_first: str | None) -> Judgment | Rating:
        """The record the importer would make of this label (its checks, its id)."""
        item = self.items[key]
        pids, models = set(self._prompts), self._models
        if len(item.models) == 2:
            return pair_label(item.prompt_id, item.models[0], item.models[1], value, annotator, pids, models,
                              "labelling app", shown_first)
        return rating_label(item.prompt_id, item.models[0], value, annotator, pids, models, "labelling app")

    def _record_id(self, annotator: str, key: str) -> str:
        item = self.items[key]
        if len(item.models) == 2:
            return human_id(item.prompt_id, item.models[0], item.models[1], annotator)
        return content_id("human-rating", item.prompt_id, item.models[0], annotator, "absolute")

    def _mine(self, annotator: str, key: str, rec: Judgment | Rating | None) -> bool:
        """Whether a stored record is one this session wrote for a label of this person on this item."""
        return rec is not None and any(rec == self._record(a.annotator, a.key, a.value or "", a.shown_first)
                                       for a in self.actions
                                       if a.action == "label" and a.annotator == annotator and a.key == key)

    def _foreign(self, annotator: str, key: str) -> dict[str, Any] | None:
        """The live label of this person on this item in the human store if the session did not write it
        (import-human's, or an earlier session's), else None. The app refuses to replace it, as import-human
        refuses a second, different label (judging/human.py). Read each time: imports may run meanwhile."""
        d = self._stored().get(self._record_id(annotator, key))
        if d is None or d.get("error_kind") == WITHDRAWN:
            return None
        try:
            rec = from_dict(Judgment if self.task == "pairwise" else Rating, d)
        except (TypeError, ValueError):
            return d  # not a record this session could have written: kept, like any other
        return None if self._mine(annotator, key, rec) else d

    def _stored(self) -> dict[str, dict[str, Any]]:
        """The latest line per id of the human store, read on from where the last call stopped (a label
        costs the bytes appended since, not the whole file); a line still being written waits for the next."""
        path = self._store_file()
        try:
            st = path.stat()
        except FileNotFoundError:
            self._tail, self._latest = (0, 0), {}
            return self._latest
        inode, done = self._tail
        if inode != st.st_ino or st.st_size < done:  # replaced or cut: read it again from the start
            done, self._latest = 0, {}
        if st.st_size > done:
            with path.open("rb") as f:
                f.seek(done)
                data = f.read(st.st_size - done)
            end = data.rfind(b"\n") + 1
            for raw in data[:end].split(b"\n"):
                try:
                    d = json.loads(raw) if raw.strip() else None
                except ValueError:
                    continue  # a damaged line is for the store's reader to name (lima-eval report)
                if isinstance(d, dict) and isinstance(d.get("id"), str):
                    self._latest[d["id"]] = d
            done += end
        self._tail = (st.st_ino, done)
        return self._latest

    def _store_file(self) -> Path:
        return self.run_dir / (HUMAN if self.task == "pairwise" else HUMAN_RATINGS)

    def _human(self) -> dict[str, Any]:
        store = RunStore(self.run_dir)
        return store.judgments(human=True) if self.task == "pairwise" else store.ratings(human=True)

    def _write_labels(self, records: list[Judgment | Rating]) -> None:
        self._append(self._store_file(), list(records))

    # --- what the admin sees ------------------------------------------------------------------------------

    def labels(self) -> list[Action]:
        """Every live label (not gold answers, not undone)."""
        return [a for a in self.actions if a.action == "label" and not a.undone]


def _queue_pairs(path: Path, prompts: dict[str, Any], models: set[str]) -> list[tuple[str, tuple[str, ...]]]:
    """The pairs of a human queue (import-human's pairwise columns; labels may be empty), checked by line."""
    header, rows = csv_rows(path)
    missing = [c for c in ("prompt_id", "model_a", "model_b") if c not in header]
    if missing:
        raise InputError(path, f"missing column(s) {', '.join(missing)}", line=1, field=missing[0])
    out: list[tuple[str, tuple[str, ...]]] = []
    for line, row in rows:
        pid = _unquoted((row.get("prompt_id") or "").strip(), set(prompts))
        a, b = (_unquoted((row.get(k) or "").strip(), models) for k in ("model_a", "model_b"))
        if pid not in prompts:
            raise InputError(path, f"unknown prompt id '{pid}'", line=line, field="prompt_id")
        for k, v in (("model_a", a), ("model_b", b)):
            if v not in models:
                raise InputError(path, f"unknown model '{v}'", line=line, field=k)
        if a == b:
            raise InputError(path, "model_b is the same as model_a", line=line, field="model_b")
        if (pid, (a, b)) not in out:
            out.append((pid, (a, b)))
    if not out:
        raise InputError(path, "no pairs to label", line=1)
    return out


def _gold_items(path: Path, task: str, prompts: dict[str, Any], models: set[str], answered: Any) -> list[Item]:
    """Gold items: pairs (or answers) with the label they must get, in import-human's CSV format."""
    header, rows = csv_rows(path)
    need = ("prompt_id", "model_a", "model_b", "label") if task == "pairwise" else ("prompt_id", "model", "label")
    missing = [c for c in need if c not in header]
    if missing:
        raise InputError(path, f"missing column(s) {', '.join(missing)} (a gold file for --task {task})", line=1,
                         field=missing[0])
    out = []
    for line, row in rows:
        v = {k: (row.get(k) or "").strip() for k in need}
        try:
            if task == "pairwise":
                rec: Judgment | Rating = pair_label(v["prompt_id"], v["model_a"], v["model_b"], v["label"], "gold",
                                                    set(prompts), models)
                ms: tuple[str, ...] = (v["model_a"], v["model_b"])
                value = str(rec.verdict)  # type: ignore[union-attr]
            else:
                rec = rating_label(v["prompt_id"], v["model"], v["label"], "gold", set(prompts), models,
                                   scales=[scale(task)])
                ms, value = (v["model"],), str(rec.label)
        except LabelError as exc:
            raise InputError(path, exc.message, line=line, field=exc.field) from None
        if not answered(v["prompt_id"], ms):
            raise InputError(path, "the run has no answer for this item", line=line, field="prompt_id")
        out.append(Item(content_id("annotate-gold", v["prompt_id"], ms), v["prompt_id"], ms, value))
    return out
