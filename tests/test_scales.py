"""Rating scales as registered kinds (lima_eval.scales): each names the report sections its ratings feed, how
the ratings figure draws it and the labels people give on it; a plugin scale, installed as a real distribution,
feeds the sections it names end to end."""

from __future__ import annotations

import json
import textwrap

import pytest
from conftest import run_cli, write_config

from lima_eval.errors import UnknownNameError
from lima_eval.judging.human import LabelError, rating_label
from lima_eval.registry import REPORT_SECTIONS, SCALES
from lima_eval.scales import Scale, labelled, scale


def test_every_built_in_scale_feeds_registered_sections_only():
    assert {"absolute", "likert", "safety", "mt-bench", "checklist"} <= set(SCALES.names())
    for name in SCALES.names():
        s = scale(name)
        assert s.name == name and s.sections, name
        assert set(s.sections) <= set(REPORT_SECTIONS.names()), name
        assert s.figure in ("shares", "mean"), name
    assert scale("checklist").feeds("checklist") and not scale("checklist").feeds("ratings")
    assert scale("mt-bench").feeds("mt_bench") and scale("mt-bench").feeds("ratings")
    assert scale("safety").feeds("safety") and not scale("absolute").feeds("safety")


def test_a_scale_nobody_registered_is_a_plain_labelled_scale():
    plain = scale("rubric")
    assert type(plain) is Scale and plain.sections == ("ratings",) and not plain.labels
    with pytest.raises(UnknownNameError, match="unknown rating scale 'likret'.*did you mean 'likert'"):
        SCALES.load("likret")


def test_people_label_on_the_scales_with_fixed_labels():
    assert [s.name for s in labelled()] == ["absolute", "likert"]
    r = rating_label("p1", "m", " Pass ", "ann", {"p1"}, {"m"})
    assert (r.scale, r.label, r.score) == ("absolute", "pass", 2.0)
    assert rating_label("p1", "m", "6", "ann", {"p1"}, {"m"}).scale == "likert"
    with pytest.raises(LabelError, match="'meh' is not one of fail, pass, excellent, or 1-6"):
        rating_label("p1", "m", "meh", "ann", {"p1"}, {"m"})
    with pytest.raises(LabelError, match="'4' is not one of fail, pass, excellent$"):
        rating_label("p1", "m", "4", "ann", {"p1"}, {"m"}, scales=[scale("absolute")])


PLUGIN = '''
from lima_eval.scales import Scale


class Harm(Scale):
    """unsafe / refused / safe under another name: the ratings table and the safety section."""

    name, sections = "harm", ("ratings", "safety")
'''


def test_a_plugin_scale_feeds_the_sections_it_names_end_to_end(tmp_path, prompts_file):
    site = tmp_path / "site"
    (site / "harmplugin").mkdir(parents=True)
    (site / "harmplugin" / "__init__.py").write_text(PLUGIN)
    info = site / "harmplugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: harmplugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("[lima_eval.scales]\nharm = harmplugin:Harm\n"))
    judge = tmp_path / "harm-judge"
    judge.mkdir()
    (judge / "judge.yaml").write_text("kind: rating\nscale: harm\nparser: lima-safety\n"
                                      "labels: [unsafe, refused, safe]\n")
    (judge / "prompt.txt").write_text("Question: {prompt}\n\n[Answer]\n{answer}\n\nReply with a rating.\n")

    def run(name, env):
        config = write_config(tmp_path / f"{name}.yaml", {
            "name": name, "output_dir": str(tmp_path / "results"),
            "benchmark": {"name": "file", "path": str(prompts_file)},
            "models": [{"name": "mine", "backend": "scripted", "model": "echo"},
                       {"name": "base", "backend": "scripted", "model": "fixed:ok"}],
            "baselines": ["base"], "judge": {"backend": "scripted", "model": "fixed:Verdict: A", "order": "random"},
            "judges": [{"name": str(judge), "backend": "scripted", "model": "fixed:Rating: refused"}]})
        out = run_cli("run", str(config), "--no-progress", env=env)
        assert out.returncode == 0, out.stderr[-2000:]
        report = tmp_path / "results" / name / "report"
        return (json.loads((report / "summary.json").read_text()), (report / "report.md").read_text(),
                (report / "report.html").read_text())

    summary, md, html = run("with", {"PYTHONPATH": str(site)})
    rows = summary["safety"]
    assert {r["model"] for r in rows} == {"mine", "base"}
    assert all(r["n"] == 6 and r["safe_rate"] == 1.0 for r in rows)  # every answer refused: safe on harm prompts
    assert "## Safety" in md and ">Safety</h2>" in html
    assert any(r["scale"] == "harm" for r in summary["ratings"])
    # Without the plugin, 'harm' is a plain labelled scale: its ratings are in the ratings table, not Safety.
    summary, md, html = run("without", {})
    assert not summary.get("safety") and "## Safety" not in md
    assert any(r["scale"] == "harm" for r in summary["ratings"])
