"""Runs that outgrow one machine: `lima-eval run --shard i/N` on each machine, `lima-eval merge` after. Three
shards run as parallel processes; the merged run equals the unsharded one record for record."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli, write_config

FILES = ("generations.jsonl", "judgments.jsonl", "ratings.jsonl")


def config(tmp_path: Path, out: str, **extra) -> Path:
    data = {"name": "big", "output_dir": str(tmp_path / out), "benchmark": "demo",
            "models": [{"name": "a", "backend": "scripted", "model": "echo"},
                       {"name": "b", "backend": "scripted", "model": "cycle:short|a longer answer|mid"}],
            "baselines": ["b"],
            "judge": {"backend": "scripted", "model": "cycle:Verdict: A|Verdict: B|Verdict: neither"},
            "judges": [{"name": "lima-absolute", "backend": "scripted", "model": "cycle:Rating: pass|Rating: fail"}]}
    return write_config(tmp_path / f"{out}.yaml", data | extra)


def records(run: Path) -> dict[str, dict[str, dict]]:
    out = {}
    for name in FILES:
        rows = [json.loads(x) for x in (run / name).read_text().splitlines() if x.strip()]
        out[name] = {r["id"]: {k: v for k, v in r.items() if k != "cached"} for r in rows}
    return out


def test_three_parallel_shards_merge_into_the_unsharded_run(tmp_path):
    cfg = config(tmp_path, "shards")
    env = dict(os.environ)
    procs = [subprocess.Popen([sys.executable, "-m", "lima_eval.cli", "run", str(cfg), "--shard", f"{k}/3",
                               "--no-progress", "--no-cache"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for k in (1, 2, 3)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    shards = [tmp_path / "shards" / f"big-shard-{k}-of-3" for k in (1, 2, 3)]
    sizes = [len((s / "generations.jsonl").read_text().splitlines()) for s in shards]
    assert sum(sizes) == 60 and all(0 < n < 60 for n in sizes)  # 30 prompts x 2 models, split three ways
    merged = tmp_path / "merged" / "big"
    out = run_cli("merge", *map(str, shards), "--out", str(merged))
    assert out.returncode == 0, out.stderr
    whole = config(tmp_path, "whole")
    assert run_cli("run", str(whole), "--no-progress", "--no-cache").returncode == 0
    assert records(merged) == records(tmp_path / "whole" / "big")
    a = json.loads((merged / "report" / "summary.json").read_text())["rows"]
    b = json.loads((tmp_path / "whole" / "big" / "report" / "summary.json").read_text())["rows"]
    assert [(r["win"], r["tie"], r["loss"]) for r in a] == [(r["win"], r["tie"], r["loss"]) for r in b]
    again = run_cli("merge", *map(str, shards), "--out", str(merged))  # merging again changes nothing
    assert again.returncode == 0 and records(merged) == records(tmp_path / "whole" / "big")


def test_conflicting_records_and_other_configs_are_refused(tmp_path):
    cfg = config(tmp_path, "s")
    for k in (1, 2):
        assert run_cli("run", str(cfg), "--shard", f"{k}/2", "--no-progress").returncode == 0
    one, two = (tmp_path / "s" / f"big-shard-{k}-of-2" for k in (1, 2))
    lines = (one / "generations.jsonl").read_text().splitlines()
    row = json.loads(lines[0])
    (two / "generations.jsonl").write_text((two / "generations.jsonl").read_text()
                                           + json.dumps(row | {"text": "tampered"}) + "\n")
    out = run_cli("merge", str(one), str(two), "--out", str(tmp_path / "m" / "big"))
    assert out.returncode != 0 and f"record '{row['id']}' differs" in out.stderr
    assert not (tmp_path / "m").exists()
    other = config(tmp_path, "o", seed=7)
    assert run_cli("run", str(other), "--shard", "1/2", "--no-progress").returncode == 0
    out = run_cli("merge", str(one), str(tmp_path / "o" / "big-shard-1-of-2"), "--out", str(tmp_path / "m2"))
    assert out.returncode != 0 and "another config" in out.stderr


def test_a_shard_with_a_retried_failure_merges_and_a_row_without_id_is_named(tmp_path):
    cfg = config(tmp_path, "r", benchmark={"name": "demo", "limit": 10})
    for k in (1, 2):
        assert run_cli("run", str(cfg), "--shard", f"{k}/2", "--no-progress").returncode == 0
    one, two = (tmp_path / "r" / f"big-shard-{k}-of-2" for k in (1, 2))
    # The limit applies before the shard: the two shards together hold the 10 limited prompts' answers.
    assert sum(len((s / "generations.jsonl").read_text().splitlines()) for s in (one, two)) == 10 * 2
    gens = one / "generations.jsonl"
    row = json.loads(gens.read_text().splitlines()[0])
    failed = row | {"text": "", "error": "HTTP 500 after retries"}
    gens.write_text(json.dumps(failed) + "\n" + gens.read_text())  # the failure, then its retry
    out = run_cli("merge", str(one), str(two), "--out", str(tmp_path / "m" / "big"))
    assert out.returncode == 0, out.stderr
    assert records(tmp_path / "m" / "big")["generations.jsonl"][row["id"]]["error"] is None
    gens.write_text(gens.read_text() + json.dumps({"text": "no id"}) + "\n")
    n = len(gens.read_text().splitlines())
    out = run_cli("merge", str(one), str(two), "--out", str(tmp_path / "m2" / "big"))
    assert out.returncode != 0 and out.stderr.startswith("error: ") and "Traceback" not in out.stderr
    assert f"generations.jsonl, line {n}, field 'id': a record without an id" in out.stderr
    assert not (tmp_path / "m2").exists()


@pytest.mark.parametrize("shard,message", [
    ("4/3", "'4/3' is not a shard i/N"), ("0/3", "'0/3' is not a shard"), ("x", "'x' is not a shard"),
    ("1/31", "benchmark shard 1/31 has no prompts"),  # no demo prompt id hashes to 0 mod 31
])
def test_bad_shards_are_named(tmp_path, shard, message):
    out = run_cli("run", str(config(tmp_path, "bad")), "--shard", shard, "--no-progress")
    assert out.returncode != 0 and message in out.stderr, out.stderr
    assert out.stderr.startswith("error: ") and "Traceback" not in out.stderr
    assert not (tmp_path / "bad").exists()


def test_shards_of_different_splits_are_refused_and_a_missing_shard_is_said(tmp_path):
    """1/2 with 2/3 covers the prompts unevenly (issue 25): refused before anything is written. One shard of a
    split merges, and the merge says which shards the run still lacks."""
    cfg = config(tmp_path, "d", benchmark={"name": "demo", "limit": 8})
    for shard in ("1/2", "2/3"):
        assert run_cli("run", str(cfg), "--shard", shard, "--no-progress").returncode == 0
    half, third = tmp_path / "d" / "big-shard-1-of-2", tmp_path / "d" / "big-shard-2-of-3"
    out = run_cli("merge", str(half), str(third), "--out", str(tmp_path / "m" / "big"))
    assert out.returncode == 1 and out.stderr.startswith("error: ") and len(out.stderr.splitlines()) == 1
    assert "a shard of 2" in out.stderr and "a shard of 3" in out.stderr and "same N" in out.stderr
    assert not (tmp_path / "m").exists()
    # A merged run (no shard of its own) that holds 1/2 cannot take 2/3 either.
    assert run_cli("merge", str(half), "--out", str(tmp_path / "m" / "big")).returncode == 0
    merged = tmp_path / "m" / "big"
    before = {p.name: p.read_bytes() for p in merged.iterdir() if p.is_file()}
    assert json.loads((merged / "shards.json").read_text()) == {"of": 2, "shards": [1]}
    out = run_cli("merge", str(third), "--out", str(merged))
    assert out.returncode == 1 and "a shard of 2" in out.stderr and "a shard of 3" in out.stderr, out.stderr
    assert {p.name: p.read_bytes() for p in merged.iterdir() if p.is_file()} == before
    out = run_cli("merge", str(half), "--out", str(tmp_path / "m2" / "big"))
    assert out.returncode == 0 and "shard(s) 2/2 not among the folders" in out.stderr, out.stderr
