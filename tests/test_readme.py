import re

from conftest import REPO


def test_ci_runs_the_readmes_test_command_verbatim():
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, re.S)
    assert len(blocks) >= 2 and "lima-eval run" in blocks[0] and "pytest" in blocks[1]
    ci_lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert blocks[1].strip() in ci_lines
