import copy

import pytest
from conftest import write_config

from lima_eval.config import RunConfig, load_config
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
    assert cfg.model("base").options["dtype"] == "bfloat16"
    assert cfg.model("base").backend_options().dtype == "bfloat16"
    assert cfg.benchmark.limit == 3 and cfg.benchmark.name == "demo"
    assert (cfg.judge.backend, cfg.judge.model) == ("openai", "gpt-4o")


@pytest.mark.parametrize("override,message", [
    ("judge.modle=x", "unknown config key 'judge.modle' (did you mean 'model'?)"),
    ("models.0.sampling.top_k=5", "--set models.0.sampling.top_k=5: unknown config key 'models.0.sampling.top_k'"),
    ("colour=red", "unknown config key 'colour'"),
    ("models.nobody.model=x", "no list item 'nobody'"),
    ("baselines=[ghost]", "'ghost' is not a model"),
    ("baselines=[mine, base]", "every model is a baseline"),
    ("models.0.sampling.max_new_tokens=lots", "expected int"),
    ("seed", "expects key=value"),
    # A typo of a judge's or a model's own key: every key the section takes (its shared keys and the backend's
    # options) and the nearest, the error named by the flag (not by a line of the file).
    ("judge.ordr=both", ["--set judge.ordr=both: unknown config key 'judge.ordr' (did you mean 'order'?)",
                         "; judge takes backend, model, ", "logprobs", "backend 'hf' has options dtype"]),
    ("judge.logprob=true", ["unknown config key 'judge.logprob' (did you mean 'logprobs'?)", "order"]),
    ("models.mine.concurency=2", ["--set models.mine.concurency=2: unknown config key 'models.0.concurency'",
                                  "(did you mean 'concurrency'?); models.0 takes ", "backend 'hf' has options dtype"]),
    ("judge.base_url=http://x/v1", ["unknown config key 'judge.base_url'", "backend 'hf' has options dtype",
                                    "base_url is an option of backend openai, openai-batch, vllm-server",
                                    "set judge.backend to one of them"]),
    ("models.0.sampling.top_k=5", ["models.0.sampling takes temperature, top_p"]),
    ("judge.backend=openai,judge.batch_size=4", ["--set judge.batch_size=4: unknown config key 'judge.batch_size'",
                                                 "backend 'openai' has options base_url"]),
])
def test_bad_config_names_the_key(tmp_path, override, message):
    path = write_config(tmp_path / "c.yaml", BASE)
    with pytest.raises(ConfigError) as err:
        load_config(path, override.split(",") if override.startswith("judge.backend=") else [override])
    for part in [message] if isinstance(message, str) else message:
        assert part in str(err.value)
    if override.startswith(("judge.", "models.mine")):
        assert str(path) not in str(err.value)


def test_errors_caused_by_set_on_the_quickstart_name_the_flag_not_the_packages_file():
    for override, flag in (("judge.ordr=both", "--set judge.ordr=both: "),
                           ("judge.sampling.top_p=3", "--set judge.sampling.top_p=3: "),
                           ("models.gemma3-270m-base.backend=vlm", "--set models.gemma3-270m-base.backend=vlm: ")):
        with pytest.raises(ConfigError) as err:
            load_config(None, [override])
        assert str(err.value).startswith(flag) and "quickstart.yaml" not in str(err.value), err.value


def test_a_typo_in_a_files_judge_section_lists_the_keys_and_names_its_line(tmp_path):
    data = copy.deepcopy(BASE) | {"judge": {"model": "embedded:tiny-random", "logprob": True}}
    path = write_config(tmp_path / "c.yaml", data)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    line = path.read_text().splitlines().index("  logprob: true") + 1
    assert str(err.value).startswith(f"{path}, line {line}: unknown config key 'judge.logprob' (did you mean "
                                     "'logprobs'?); judge takes ")
    assert "backend 'hf' has options dtype, device, batch_size, max_batch_tokens" in str(err.value)


# --- switching a section's backend on the command line -------------------------------------------------------

def _backend_names():
    from lima_eval.registry import BACKENDS

    return BACKENDS.names()


def _options_of(backend):
    """The backend's own options with their defaults, as a config file would spell them."""
    import dataclasses

    from lima_eval.registry import BACKENDS

    opts = getattr(BACKENDS.load(backend), "Options", None)
    return {f.name: getattr(opts(), f.name) for f in dataclasses.fields(opts)} if opts else {}


@pytest.mark.parametrize("new", _backend_names())
@pytest.mark.parametrize("old", _backend_names())
def test_set_switches_a_backend_for_every_pair_of_backends(tmp_path, capsys, old, new):
    """A model and the judge written for backend `old` (every option of it in the file), switched to `new` with
    --set: the old backend's options the new one lacks are dropped with one note per section, the ones both
    take are kept, and the config loads."""
    data = copy.deepcopy(BASE)
    data["models"][0] = {"name": "mine", "backend": old, "model": "echo", **_options_of(old)}
    data["judge"] = {"backend": old, "model": "echo", "order": "random", **_options_of(old)}
    path = write_config(tmp_path / "c.yaml", data)
    cfg = load_config(path, [f"models.mine.backend={new}", f"judge.backend={new}"])
    notes = [line for line in capsys.readouterr().err.splitlines() if line]
    new_names, old_names = set(_options_of(new)), set(_options_of(old))
    dropped = sorted(old_names - new_names) if old != new else []
    for spec, where in ((cfg.model("mine"), "models.0"), (cfg.judge, "judge")):
        assert spec.backend == new and spec.model == "echo"
        assert set(spec.options) == (old_names & new_names if old != new else old_names)
        assert spec.backend_options() is not None or not new_names
        said = [n for n in notes if f"--set {'models.mine' if where == 'models.0' else 'judge'}.backend={new}:" in n]
        if dropped:
            assert len(said) == 1 and said[0].startswith("note: ") and f"backend '{old}'" in said[0]
            assert sorted(k.split(".")[-1] for k in said[0].split("dropped ")[1].split(" (")[0].split(", ")) == dropped
        else:
            assert not said
    assert cfg.judge.order == "random"  # the shared keys stay


def test_options_given_with_set_are_checked_against_the_new_backend(tmp_path):
    data = copy.deepcopy(BASE) | {"judge": {"model": "embedded:tiny-random", "batch_size": 4, "dtype": "float32"}}
    path = write_config(tmp_path / "c.yaml", data)
    # Given with --set for the new backend: kept; a null of an option the new backend lacks: removed.
    cfg = load_config(path, ["judge.base_url=http://127.0.0.1:9/v1", "judge.backend=openai", "judge.model=gpt-4o",
                             "judge.batch_size=null"])
    assert cfg.judge.options == {"base_url": "http://127.0.0.1:9/v1"}
    assert load_config(path, ["judge.batch_size=null", "judge.backend=openai"]).judge.options == {}
    # The old backend's option given with --set is the new backend's error, named by its flag.
    with pytest.raises(ConfigError, match=r"^--set judge.dtype=bfloat16: unknown config key 'judge.dtype'"):
        load_config(path, ["judge.dtype=bfloat16", "judge.backend=openai"])
    # Switching back to the file's backend drops nothing.
    assert load_config(path, ["judge.backend=openai", "judge.backend=hf"]).judge.options == {"batch_size": 4,
                                                                                           "dtype": "float32"}
    # A typo that is no backend's option stays an error after a switch, named with its line in the file.
    bad = write_config(tmp_path / "bad.yaml", data | {"judge": data["judge"] | {"ordr": "both"}})
    with pytest.raises(ConfigError, match=r"bad.yaml, line \d+: unknown config key 'judge.ordr' \(did you mean"):
        load_config(bad, ["judge.backend=openai"])


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


def _sections(obj, path=""):
    """Every nested config section (a dataclass-valued field) with its dotted path and default value."""
    import dataclasses

    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            here = f"{path}.{f.name}" if path else f.name
            yield here, value
            yield from _sections(value, here)


def _leaves(section):
    import dataclasses

    return {f.name: getattr(section, f.name) for f in dataclasses.fields(section)
            if not dataclasses.is_dataclass(getattr(section, f.name))}


def _get(obj, dotted):
    for part in dotted.split("."):
        obj = obj[int(part)] if isinstance(obj, list) else getattr(obj, part)
    return obj


def _section_cases():
    """(where the section sits in a config, its default) for the run's own sections, a model's, a further
    judge's and the SFT section's: each must keep its own defaults under a partial override."""
    from lima_eval.config import JudgeSpec, ModelSpec, RunConfig, SFTSection

    cases = list(_sections(RunConfig()))
    cases += [(f"models.0.{p}", v) for p, v in _sections(ModelSpec())]
    cases += [(f"judges.0.{p}", v) for p, v in _sections(JudgeSpec())]
    cases += [("sft", SFTSection())] + [(f"sft.{p}", v) for p, v in _sections(SFTSection())]
    return cases


@pytest.mark.parametrize("where,default", _section_cases(), ids=lambda x: x if isinstance(x, str) else "")
@pytest.mark.parametrize("how", ["yaml", "set"])
def test_a_partial_override_merges_onto_the_sections_own_defaults(tmp_path, where, default, how):
    """Setting one key of a nested section keeps every other key at that section's default (a judge's
    `sampling: {max_new_tokens: 3}` stays greedy; it must not fall back to the models' sampled defaults)."""
    import copy

    leaves = _leaves(default)
    # Change one key to a value that differs from its default, of the same type.
    numeric = [k for k, v in leaves.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    text = [k for k, v in leaves.items() if isinstance(v, str) and k not in ("name", "base", "out", "model")]
    if not numeric + text:
        pytest.skip(f"{where} has no plain key to override")
    key = (numeric + text)[0]
    old = leaves[key]
    new = (old + 1) if isinstance(old, (int, float)) else f"{old}x"
    data = copy.deepcopy(BASE) | {"judges": [{"name": "lima-absolute"}]}
    if where.startswith("sft"):
        data["sft"] = {"name": "tuned", "base": "embedded:tiny-random"}
        data["models"] = data["models"] + [{"name": "tuned", "backend": "hf", "model": "sft"}]
    overrides = []
    parts = where.split(".")
    if how == "yaml":
        node = data
        for p in parts:
            node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
            if isinstance(node, str):  # benchmark: demo -> a mapping
                break
        if isinstance(node, dict):
            node[key] = new
        else:
            data[parts[0]] = {"name": node, key: new}
    else:
        overrides = [f"{where}.{key}={new!r}" if isinstance(new, str) else f"{where}.{key}={new}"]
    cfg = load_config(write_config(tmp_path / "c.yaml", data), overrides)
    got = _get(cfg, where)
    assert getattr(got, key) == new
    for k, v in leaves.items():
        if k != key and not (where.startswith("sft") and k in ("base", "name", "out")):
            assert getattr(got, k) == v, f"{where}.{k} lost its default {v!r} after overriding {key}"


@pytest.mark.parametrize("section,message", [
    ({"backend": "hf", "dtype": 16}, "config key 'models.0.dtype': expected str, got 16"),
    ({"backend": "hf", "batch_size": "many"}, "config key 'models.0.batch_size': expected int"),
    ({"backend": "hf", "base_url": "http://x/v1"}, "unknown config key 'models.0.base_url' (backend 'hf' has options"),
    ({"backend": "openai", "dtype": "bfloat16"}, "backend 'openai' has options base_url"),
    ({"backend": "openai", "timout": 3}, "unknown config key 'models.0.timout' (did you mean 'timeout'?)"),
    ({"backend": "vllm", "engine": "fast"}, "config key 'models.0.engine': expected a mapping"),
    ({"backend": "scripted", "device": "cpu"},
     "(backend 'scripted' has no options of its own); models.0 also takes backend, model, sampling"),
    ({"backend": "vlm"}, "config key 'models.0.backend': unknown backend 'vlm': did you mean 'vllm'?"),
])
def test_a_backends_own_options_are_checked_by_it(tmp_path, section, message):
    data = copy.deepcopy(BASE)
    data["models"][0] |= section
    with pytest.raises(ConfigError) as err:
        load_config(write_config(tmp_path / "c.yaml", data))
    assert message in str(err.value)


def test_load_config_leaves_its_input_alone_and_validate_changes_nothing(tmp_path):
    """with_sft returns a new config; validate only checks (it used to insert the SFT model)."""
    from lima_eval.config import build_section, validate, with_sft

    data = copy.deepcopy(BASE) | {"sft": {"name": "tuned", "base": "embedded:tiny-random"}}
    raw = build_section(RunConfig, data, "")
    before = copy.deepcopy(raw)
    attached = with_sft(raw)
    assert raw == before and "tuned" not in [m.name for m in raw.models]
    assert attached.models[0].name == "tuned" and attached.models[0].revision
    snapshot = copy.deepcopy(attached)
    validate(attached)
    assert attached == snapshot


def test_generation_ids_are_what_they_were_before_backends_owned_their_options():
    """The identity recipe of the flat-Endpoint days: dtype always present, transport options never."""
    import dataclasses

    from lima_eval.config import Endpoint

    hf = Endpoint.make(backend="hf", model="m", dtype="bfloat16", batch_size=3, device="cpu")
    api = Endpoint.make(backend="openai", model="gpt", base_url="http://x/v1", timeout=3.0)
    for spec, dtype in ((hf, "bfloat16"), (api, "auto")):
        assert spec.identity() == {"backend": spec.backend, "model": spec.model,
                                   "sampling": dataclasses.asdict(spec.sampling), "prompt_format": "auto",
                                   "system_prompt": None, "dtype": dtype}


def test_a_resolved_config_from_before_backends_owned_their_options_still_loads():
    """Old run folders wrote every backend's keys into every endpoint; those that mean nothing to the endpoint's
    backend are dropped when the run is read back (a user's config still gets them named as errors)."""
    from lima_eval.config import from_resolved, to_plain

    old = to_plain(load_config(None))
    legacy = {"dtype": "auto", "device": "auto", "batch_size": 8, "max_batch_tokens": None, "base_url": None,
              "api_key_env": "OPENAI_API_KEY", "timeout": 120.0, "max_retries": 4, "engine": {},
              "server_timeout": 600.0}
    for section in [*old["models"], old["judge"]]:
        section |= legacy
    old["judge"]["backend"] = "openai"
    cfg = from_resolved(old)
    assert cfg.judge.options == {"base_url": None, "api_key_env": "OPENAI_API_KEY", "timeout": 120.0, "max_retries": 4}
    assert set(cfg.models[0].options) == {"dtype", "device", "batch_size", "max_batch_tokens"}


def test_a_bad_key_is_named_with_the_file_and_its_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: t\nmodels:\n  - name: mine\n    model: embedded:tiny-random\n    sampling:\n"
                    "      top_p: 3\n  - {name: base, model: embedded:tiny-random}\nbaselines: [base]\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}, line 6: config key 'models.0.sampling.top_p'")
