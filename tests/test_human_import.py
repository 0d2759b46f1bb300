import json

import pytest
from conftest import run_cli, write_config

from lima_eval.config import load_config, to_plain
from lima_eval.errors import InputError
from lima_eval.judging.human import HumanImportError, import_human
from lima_eval.store import HUMAN, RunStore

HEADER = "prompt_id,model_a,model_b,label,annotator,comment\n"
GOOD = HEADER + "p1,mine,base,a,ann1,clear win\np2,base,mine,B,ann1,\np3,mine,base,tie,ann2,\n"


@pytest.fixture
def run_dir(tmp_path, prompts_file):
    cfg = load_config(write_config(tmp_path / "c.yaml", {
        "name": "h", "output_dir": str(tmp_path / "results"),
        "benchmark": {"name": "file", "path": str(prompts_file)},
        "models": [{"name": "mine", "model": "embedded:tiny-random"},
                   {"name": "base", "model": "embedded:tiny-random"}],
        "baselines": ["base"],
    }))
    RunStore(cfg.run_dir).write_config(to_plain(cfg))
    return cfg.run_dir


def csv_file(tmp_path, text, name="labels.csv", bom=False):
    path = tmp_path / name
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode("utf-8"))
    return path


def test_good_file_imports_and_reimport_is_idempotent(tmp_path, run_dir):
    path = csv_file(tmp_path, GOOD, bom=True)
    result = import_human(run_dir, path)
    assert (result.imported, result.already) == (3, 0)
    labels = RunStore(run_dir).judgments(human=True)
    assert {(j.prompt_id, j.verdict, j.annotator) for j in labels.values()} == {
        ("p1", "a", "ann1"), ("p2", "b", "ann1"), ("p3", "tie", "ann2")}
    again = import_human(run_dir, path)
    assert (again.imported, again.already) == (0, 3)
    assert len((run_dir / HUMAN).read_text().splitlines()) == 3


# Line 2 of every file is a good row; the bad rows follow it.
BAD_ROWS = [
    ("p9,mine,base,a,ann1,\n", "line 3, field 'prompt_id': unknown prompt id 'p9'"),
    ("p1,mine,ghost,a,ann1,\n", "line 3, field 'model_b': unknown model 'ghost'"),
    ("p1,mine,base,maybe,ann1,\n", "line 3, field 'label': 'maybe' is not one of a, b, tie"),
    ("p1,mine,base,,ann1,\n", "line 3, field 'label': empty"),
    ("p1,mine,mine,a,ann1,\n", "line 3, field 'model_b': model_b is the same as model_a"),
    ("p1,mine,base,a,ann1,\np1,base,mine,b,ann1,\n", "line 4, field 'annotator': duplicate label by 'ann1'"),
    ('p1,mine,base,a,ann1,"a comment\nover two lines"\np7,mine,base,a,ann1,\n', "line 5, field 'prompt_id'"),
]


@pytest.mark.parametrize("rows,message", BAD_ROWS)
def test_each_bad_row_is_named_and_nothing_is_imported(tmp_path, run_dir, rows, message):
    path = csv_file(tmp_path, HEADER + "p2,mine,base,a,ann9,\n" + rows)
    with pytest.raises(HumanImportError) as err:
        import_human(run_dir, path)
    assert message in str(err.value)
    assert not (run_dir / HUMAN).exists()


@pytest.mark.parametrize("text,message", [
    ("prompt_id,model_a,label,annotator\np1,mine,a,x\n", "line 1, field 'model_b': missing column(s) model_b"),
    ("", "line 1, field 'prompt_id': missing column(s)"),
])
def test_bad_header(tmp_path, run_dir, text, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        import_human(run_dir, csv_file(tmp_path, text))


def test_not_utf8(tmp_path, run_dir):
    path = tmp_path / "latin1.csv"
    path.write_bytes(HEADER.encode() + "p1,mine,base,a,Jos\xe9,\n".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        import_human(run_dir, path)


def test_skip_bad_rows_imports_the_rest_and_lists_what_it_skipped(tmp_path, run_dir):
    path = csv_file(tmp_path, GOOD + "p9,mine,base,a,ann1,\np4,mine,base,x,ann1,\n")
    result = import_human(run_dir, path, skip_bad_rows=True)
    assert result.imported == 3 and len(result.skipped) == 2
    assert "line 5" in result.skipped[0] and "line 6" in result.skipped[1]


def test_conflicting_relabel_is_rejected(tmp_path, run_dir):
    import_human(run_dir, csv_file(tmp_path, GOOD))
    with pytest.raises(HumanImportError, match="differently in an earlier import"):
        import_human(run_dir, csv_file(tmp_path, HEADER + "p1,base,mine,a,ann1,\n", name="second.csv"))


def test_cli_reports_bad_rows_and_exits_1(tmp_path, run_dir):
    path = csv_file(tmp_path, HEADER + "p1,mine,base,maybe,ann1,\n")
    proc = run_cli("import-human", str(run_dir), str(path))
    assert proc.returncode == 1
    assert f"{path}: 1 bad row(s); nothing imported" in proc.stderr
    assert "line 2, field 'label'" in proc.stderr and "Traceback" not in proc.stderr
    ok = run_cli("import-human", str(run_dir), str(csv_file(tmp_path, GOOD, name="ok.csv")))
    assert ok.returncode == 0, ok.stderr
    summary = json.loads((run_dir / "report" / "summary.json").read_text())
    human = [r for r in summary["rows"] if r["judge"] == "human"]
    assert [(r["model"], r["baseline"], r["win"], r["tie"], r["loss"]) for r in human] == [("mine", "base", 2, 1, 0)]


RATINGS = ("prompt_id,model,label,annotator\n"
           "p1,mine,excellent,ann1\np2,mine,pass,ann1\np3,mine,FAIL,ann1\np1,base,fail,ann1\n"
           "p1,mine,5,ann2\np2,base,2,ann2\n")


def test_rating_labels_import_into_ratings_and_the_report(tmp_path, run_dir):
    result = import_human(run_dir, csv_file(tmp_path, RATINGS))
    assert (result.imported, result.already) == (6, 0)
    ratings = RunStore(run_dir).ratings(human=True).values()
    assert sorted((r.prompt_id, r.model, r.scale, r.label, r.score) for r in ratings) == [
        ("p1", "base", "absolute", "fail", 1.0), ("p1", "mine", "absolute", "excellent", 3.0),
        ("p1", "mine", "likert", "5", 5.0), ("p2", "base", "likert", "2", 2.0),
        ("p2", "mine", "absolute", "pass", 2.0), ("p3", "mine", "absolute", "fail", 1.0)]
    from lima_eval.report.build import build_report

    summary = json.loads((build_report(run_dir) / "summary.json").read_text())
    mine = next(r for r in summary["ratings"] if r["model"] == "mine" and r["scale"] == "absolute")
    assert mine["judge"] == "human" and mine["counts"] == {"fail": 1, "pass": 1, "excellent": 1}
    assert mine["shares"]["pass"]["share"] == pytest.approx(1 / 3, abs=1e-6)
    assert import_human(run_dir, csv_file(tmp_path, RATINGS)).already == 6


@pytest.mark.parametrize("row,where", [
    ("p1,mine,great,ann1", "line 2, field 'label': 'great' is not one of fail, pass, excellent, or 1-6"),
    ("p1,nobody,pass,ann1", "line 2, field 'model': unknown model 'nobody'"),
    ("p9,mine,pass,ann1", "line 2, field 'prompt_id'"),
    ("p1,mine,,ann1", "line 2, field 'label': empty"),
])
def test_bad_rating_rows_are_named(tmp_path, run_dir, row, where):
    path = csv_file(tmp_path, "prompt_id,model,label,annotator\n" + row + "\n")
    with pytest.raises(HumanImportError) as err:
        import_human(run_dir, path)
    assert where in str(err.value)
    assert not (run_dir / "human_ratings.jsonl").exists()
