import subprocess
import sys

from conftest import run_cli, write_config


def test_help_and_import_load_no_heavy_packages():
    code = ("import sys\nfrom lima_eval.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "import lima_eval.pipeline, lima_eval.config\n"
            "print(sorted(m for m in ('torch', 'transformers', 'openai', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Usage:" in out.stdout and out.stdout.strip().endswith("[]")


def test_library_errors_are_one_line_with_exit_1(tmp_path):
    proc = run_cli("run", str(tmp_path / "missing.yaml"))
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"error: cannot read config {tmp_path / 'missing.yaml'}: file not found"


def test_debug_shows_the_traceback(tmp_path):
    proc = run_cli("--debug", "run", str(tmp_path / "missing.yaml"))
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "ConfigError" in proc.stderr


def test_unknown_key_is_named(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", {"name": "x", "modles": []})
    proc = run_cli("run", str(cfg))
    assert proc.returncode == 1 and "unknown config key 'modles' (did you mean 'models'?)" in proc.stderr


def test_report_on_a_folder_that_is_not_a_run(tmp_path):
    proc = run_cli("report", str(tmp_path))
    assert proc.returncode == 1 and "not a lima-eval run directory" in proc.stderr
