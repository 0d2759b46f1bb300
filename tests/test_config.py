import pytest

from conftest import write_config
from lima_eval.config import load_config
from lima_eval.errors import ConfigError

BASE = {
    "name": "t",
    "benchmark": "demo",
    "models": [
        {"name": "mine", "backend": "hf", "model": "embedded:tiny-random"},
        {"name": "base", "backend": "hf", "model": "embedded:tiny-random", "sampling": {"temperature": 0}},
    ],
    "baselines": ["base"],
}


def test_defaults_are_limas_decoding_and_a_greedy_judge(tmp_path):
    cfg = load_config(write_config(tmp_path / "c.yaml", BASE))
    s = cfg.model("mine").sampling
    assert (s.temperature, s.top_p, s.repetition_penalty, s.max_new_tokens) == (0.7, 0.9, 1.2, 2048)
    assert cfg.model("base").sampling.greedy and cfg.judge.sampling.greedy
    assert cfg.pairs() == [("mine", "base")]


def test_set_overrides_by_index_and_by_model_name(tmp_path):
    path = write_config(tmp_path / "c.yaml", BASE)
    cfg = load_config(path, ["models.mine.sampling.max_new_tokens=16", "models.1.dtype=bfloat16",
                             "benchmark.limit=3", "judge.model=gpt-4o", "judge.backend=openai"])
    assert cfg.model("mine").sampling.max_new_tokens == 16
    assert cfg.model("base").dtype == "bfloat16"
    assert cfg.benchmark.limit == 3 and cfg.benchmark.name == "demo"
    assert (cfg.judge.backend, cfg.judge.model) == ("openai", "gpt-4o")


@pytest.mark.parametrize("override,message", [
    ("judge.modle=x", "unknown config key 'judge.modle' (did you mean 'model'?)"),
    ("models.0.sampling.top_k=5", "unknown config key 'models.0.sampling.top_k'"),
    ("colour=red", "unknown config key 'colour'"),
    ("models.nobody.model=x", "no list item 'nobody'"),
    ("baselines=[ghost]", "'ghost' is not a model"),
    ("baselines=[mine, base]", "every model is a baseline"),
    ("models.0.sampling.max_new_tokens=lots", "expected int"),
    ("seed", "expects key=value"),
])
def test_bad_config_names_the_key(tmp_path, override, message):
    with pytest.raises(ConfigError) as err:
        load_config(write_config(tmp_path / "c.yaml", BASE), [override])
    assert message in str(err.value)


def test_builtin_quickstart_config_is_valid():
    cfg = load_config(None)
    assert cfg.name == "quickstart" and cfg.pairs() and cfg.judge.name == "lima-pairwise"


def test_bad_yaml_names_the_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: t\nmodels: [\n  - oops: : :\n")
    with pytest.raises(ConfigError, match=r"c.yaml, line \d+: not valid YAML"):
        load_config(path)


def test_every_example_run_config_loads():
    from pathlib import Path

    examples = [p for p in (Path(__file__).parent.parent / "examples").glob("*.yaml")]
    assert len(examples) >= 3
    for path in examples:
        cfg = load_config(path)
        assert cfg.models and cfg.all_judges()
