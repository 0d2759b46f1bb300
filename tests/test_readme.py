import re

from conftest import REPO


def test_ci_runs_the_readmes_test_command_verbatim():
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, re.DOTALL)
    assert len(blocks) >= 2 and "lima-eval run" in blocks[0] and "pytest" in blocks[1]
    ci_lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert blocks[1].strip() in ci_lines


def test_the_readmes_lima_test_recipe_gives_limas_300_prompts(shared_data, tmp_path):
    """The one-liner that turns Just-Eval's example_data.json into the file examples/lima-test.yaml reads."""
    import json
    import shutil
    import subprocess
    import sys

    import yaml

    from lima_eval.benchmarks import load_prompts
    from lima_eval.config import BenchmarkSpec

    readme = (REPO / "README.md").read_text()
    (command,) = re.findall(r'`(python -c "import json; .*?> (data/lima_test_300_prompts\.jsonl))`', readme, re.DOTALL)
    expected = yaml.safe_load((REPO / "examples" / "lima-test.yaml").read_text())["benchmark"]["path"]
    assert command[1] == expected
    shutil.copy(shared_data / "lima" / "just_eval_example_data.json", tmp_path / "example_data.json")
    (tmp_path / "data").mkdir()
    script = command[0].split(" > ")[0].replace("python -c ", "", 1).strip('"')
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True)
    (tmp_path / expected).write_text(out.stdout)
    prompts = load_prompts(BenchmarkSpec(name="lima-test", path=str(tmp_path / expected)))
    reference = [json.loads(line) for line in (shared_data / "lima" / "lima_test_300_prompts.jsonl").open()]
    assert len(prompts) == 300
    assert {(p.id, p.text) for p in prompts} == {(str(r["lima_test_index"]), r["instruction"]) for r in reference}
