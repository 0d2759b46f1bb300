"""`lima-eval annotate`: check everything, make or reopen the session, print the links, serve."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

from lima_eval.annotate.app import listen, serve
from lima_eval.annotate.session import FOLDER, SESSION, Session, read_tokens
from lima_eval.errors import ConfigError, require
from lima_eval.lock import RunLock
from lima_eval.run import Run

SERVER = "server.json"  # in RUN/annotate/: the port the session was last served on, for the next `--port 0`


def start(run_dir: Path, task: str | None, annotators: int | None, tokens_file: Path | None, overlap: int | None,
          queue: Path | None, gold: Path | None, seed: int, host: str, port: int) -> None:
    require("annotate", "starlette", "uvicorn")
    Run(run_dir)  # a readable run, before anything is written
    if annotators is not None and tokens_file is not None:
        raise ConfigError("--annotators and --tokens: give one of them")
    people = read_tokens(tokens_file) if tokens_file is not None else None
    sock, port_note = _bind(run_dir, host, port)  # the address is checked before anything is written
    exists = (run_dir / FOLDER / SESSION).exists()
    given = [f"--{k}" for k, v in (("task", task), ("annotators", annotators), ("tokens", tokens_file),
                                   ("overlap", overlap), ("queue", queue), ("gold", gold)) if v is not None]
    with RunLock(run_dir / FOLDER):  # one server per session
        if exists:
            session = Session.load(run_dir)
            if given:
                raise ConfigError(f"{run_dir / FOLDER} holds a labelling session already ({session.task}, "
                                  f"{len(session.queues)} annotator(s), overlap {session.overlap}); start it again "
                                  f"without {', '.join(given)}, or move that folder away to start a new one")
        else:
            if people is None:
                people = [(f"ann{i + 1}", "") for i in range(annotators or 1)]
            session = Session.create(run_dir, task or "pairwise", people, overlap or 1, queue, gold, seed)
        tokens = session.tokens()
        _remember(run_dir, sock.getsockname()[1])

        def ready(bound: int) -> None:
            shown = f"[{host}]" if ":" in host else host
            url = f"http://{shown}:{bound}"
            golds = sum(1 for item in session.items.values() if item.gold is not None)
            print(f"labelling {run_dir} ({session.task}, {len(session.items)} items"
                  f"{f' incl. {golds} gold' if golds else ''}, overlap {session.overlap}); Ctrl-C stops, a "
                  f"restart resumes", file=sys.stderr)
            if port_note:
                print(port_note.format(port=bound), file=sys.stderr)
            if host not in ("127.0.0.1", "localhost", "::1"):
                print(f"warning: listening on {host}: anyone who can reach it and holds a link can label",
                      file=sys.stderr)
            for name, token in (tokens.get("annotators") or {}).items():
                print(f"annotator {name}: {url}/a/{token}")
            if tokens.get("admin"):
                print(f"admin: {url}/admin/{tokens['admin']}")
            else:
                print(f"(the links' tokens are not in {run_dir / FOLDER}/tokens.json any more)")
            sys.stdout.flush()

        ready(sock.getsockname()[1])
        serve(session, sock)


def _bind(run_dir: Path, host: str, port: int) -> tuple[socket.socket, str]:
    """The listening socket, and a line saying which port `--port 0` chose: the one this run's session was last
    served on when it is free (so a restart keeps the links), else a new free one."""
    if port != 0:
        return listen(host, port), ""
    previous = _remembered(run_dir)
    if previous is None:
        return listen(host, 0), "--port 0: a free port, {port} (a restart with --port 0 tries it again)"
    try:
        return listen(host, previous), f"--port 0: port {previous} again, as the last time (the same links)"
    except ConfigError:
        return listen(host, 0), (f"--port 0: port {previous} of the last time is taken; a new free one, {{port}} "
                                 f"(new links)")


def _remembered(run_dir: Path) -> int | None:
    try:
        port = json.loads((run_dir / FOLDER / SERVER).read_text(encoding="utf-8"))["port"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return port if isinstance(port, int) and 0 < port <= 65535 else None


def _remember(run_dir: Path, port: int) -> None:
    tmp = run_dir / FOLDER / (SERVER + ".tmp")
    tmp.write_text(json.dumps({"port": port}) + "\n", encoding="utf-8")
    tmp.replace(run_dir / FOLDER / SERVER)
