"""`lima-eval annotate`: check everything, make or reopen the session, print the links, serve."""

from __future__ import annotations

import sys
from pathlib import Path

from lima_eval.annotate.app import listen, serve
from lima_eval.annotate.session import FOLDER, SESSION, Session, read_tokens
from lima_eval.errors import ConfigError, require
from lima_eval.lock import RunLock
from lima_eval.run import Run


def start(run_dir: Path, task: str | None, annotators: int | None, tokens_file: Path | None, overlap: int | None,
          queue: Path | None, gold: Path | None, seed: int, host: str, port: int) -> None:
    require("annotate", "starlette", "uvicorn")
    Run(run_dir)  # a readable run, before anything is written
    if annotators is not None and tokens_file is not None:
        raise ConfigError("--annotators and --tokens: give one of them")
    people = read_tokens(tokens_file) if tokens_file is not None else None
    sock = listen(host, port)  # the address is checked before anything is written
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

        def ready(bound: int) -> None:
            shown = f"[{host}]" if ":" in host else host
            url = f"http://{shown}:{bound}"
            print(f"labelling {run_dir} ({session.task}, {len(session.items)} items incl. gold, overlap "
                  f"{session.overlap}); Ctrl-C stops, a restart resumes", file=sys.stderr)
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
