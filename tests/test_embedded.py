"""Converting an embedded model into a fresh cache folder: what the user sees, and what stays on disk."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lima_eval.embedded import MARKER, resolve

# Converts as the CLI does (lima-eval's logger at INFO, so our bar is drawn), then says whether transformers'
# own progress bars are on again afterwards.
CONVERT = """
import logging, sys
logging.basicConfig(level=logging.WARNING)
logging.getLogger("lima_eval").setLevel(logging.INFO)
from lima_eval.embedded import resolve
print(resolve(sys.argv[1]))
from transformers.utils import logging as hf_logging
print(hf_logging.is_progress_bar_enabled())
"""
TRANSFORMERS_BARS = ("Converting and de-quantizing GGUF tensors", "Loading weights", "Writing model shards")


def _convert(model: str, cache: Path) -> subprocess.CompletedProcess:
    # Bars on before the conversion (an in-process CLI test of this session may have switched them off through
    # HF_HUB_DISABLE_PROGRESS_BARS), so that "on again afterwards" is what is measured.
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_PROGRESS_BARS"} | {"LIMA_EVAL_CACHE": str(cache)}
    out = subprocess.run([sys.executable, "-c", CONVERT, model], env=env, capture_output=True, text=True,
                         timeout=900, check=False)
    assert out.returncode == 0, out.stderr
    return out


def test_converting_draws_our_bar_alone_and_restores_transformers_bars(tmp_path):
    """transformers' 'Writing model shards' bar used to draw between the lines of ours."""
    cache = tmp_path / "cache"
    (cache / "models").mkdir(parents=True)
    # tiny-random borrows the converted SmolLM2's tokenizer (converted once in the default cache), so only
    # tiny-random itself is converted here.
    (cache / "models" / "smollm2-135m-instruct").symlink_to(resolve("embedded:smollm2-135m-instruct"))
    out = _convert("embedded:tiny-random", cache)
    folder, bars_on = out.stdout.split()
    assert Path(folder) == cache / "models" / "tiny-random" and (Path(folder) / MARKER).is_file()
    assert "convert tiny-random once into" in out.stderr
    assert not [bar for bar in TRANSFORMERS_BARS if bar in out.stderr], out.stderr
    assert bars_on == "True"


@pytest.mark.slow
def test_an_assembled_gguf_goes_once_converted(tmp_path):
    """Gemma's 253 MB GGUF, assembled into the cache from its packages, used to stay there beside the converted
    model. The same step on a copy of SmolLM2's GGUF (a third of the size; converting Gemma itself takes minutes)."""
    from lima_eval.embedded import SMOLLM2_FILE, _convert_assembled, _smollm2_dir

    assembled = tmp_path / "models" / ".gguf" / SMOLLM2_FILE
    assembled.parent.mkdir(parents=True)
    shutil.copyfile(_smollm2_dir() / SMOLLM2_FILE, assembled)
    out = tmp_path / "models" / "converted"
    out.mkdir()
    steps: list[int] = []
    _convert_assembled(assembled, out, lambda: steps.append(1))
    assert (out / "config.json").is_file() and steps
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["converted"]  # no .gguf folder left


@pytest.mark.slow
def test_converting_reads_the_gguf_once(tmp_path):
    """transformers opened a new GGUF reader for the tokenizer, the config and the weights, and we a fourth
    for add_bos_token: each parses the whole metadata (Gemma's 262k-token vocabulary: ~20 s apiece here)."""
    import gguf

    from lima_eval.embedded import SMOLLM2_FILE, _convert_gguf, _smollm2_dir

    opened: list[str] = []
    reader = gguf.GGUFReader

    def counting(path, mode="r"):  # observes the library's reader; the conversion itself runs for real
        opened.append(str(path))
        return reader(path, mode)

    gguf.GGUFReader = counting
    try:
        _convert_gguf(_smollm2_dir(), SMOLLM2_FILE, tmp_path, lambda: None)
    finally:
        gguf.GGUFReader = reader
    assert opened == [str(_smollm2_dir() / SMOLLM2_FILE)]
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "tokenizer.json").is_file()
    assert gguf.GGUFReader is reader
