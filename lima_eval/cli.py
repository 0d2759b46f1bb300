"""The `lima-eval` command: thin click commands over the library. The one place errors become messages.

Each command imports the library modules it runs in its own body, so `lima-eval --help` and every command load
only what they use: importing all the commands' modules (numpy, the report) takes about 0.5 s, this file 0.1 s.
The CLI is the top layer, so these imports hide no cycle (docs/architecture.md).
"""

from __future__ import annotations

import gc
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from lima_eval.errors import LimaEvalError
from lima_eval.judging.formats import names as format_names


class FormatChoice(click.Choice[str]):
    """A --format option's choices: one family's import formats, built-ins and plugins (judging/formats.py),
    read from the registry when click first needs them (parsing or the command's --help), not at import."""

    def __init__(self, family: str, *extra: str):
        self.family, self.extra = family, extra
        super().__init__(())

    @property
    def choices(self) -> tuple[str, ...]:
        return (*self.extra, *format_names(self.family))

    @choices.setter
    def choices(self, value: Any) -> None:
        """Choice.__init__ sets the choices; these come from the registry instead."""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.version_option(package_name="lima-eval")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """LIMA-style evaluation: generate answers, judge them pairwise, report win / tie / loss."""
    ctx.obj = {"debug": debug}
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("lima_eval").setLevel(logging.DEBUG if debug else logging.INFO)
    if not debug:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' "Loading weights" bars
    # OpenMP threads that sleep instead of spinning while they wait: on a shared machine a spinning thread
    # fights the other process for its core (a forward pass measured 1.5x slower than with one thread);
    # on an idle one this costs ~4%. Must be set before torch loads; OMP_NUM_THREADS pins the thread count.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@cli.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config key, e.g. --set judge.model=gpt-4o --set benchmark.limit=5 (repeatable).")
@click.option("--no-progress", is_flag=True, help="Hide the progress bars.")
@click.option("--no-cache", is_flag=True, help="Ask the judge again instead of reusing cached replies.")
@click.option("--wait", is_flag=True, help="If another lima-eval is writing to the run folder, wait for it to finish.")
@click.option("--shard", default=None, metavar="I/N",
              help="Only this machine's share of the prompts (a stable hash of each id), into RUN-shard-I-of-N; "
                   "combine the shards with `lima-eval merge`.")
@click.option("--dry-run", is_flag=True, help="Write nothing, call nothing: print per stage the requests to make, "
              "those on disk or in the judge cache, estimated tokens and cost (sync and batch prices), and the API "
              "keys the real run needs (no key needed for the dry run itself).")
def run(config: Path | None, overrides: tuple[str, ...], no_progress: bool, no_cache: bool, wait: bool,
        shard: str | None, dry_run: bool) -> None:
    """Generate, judge and report. With no CONFIG: the built-in offline quickstart on the embedded models."""
    from lima_eval.config import load_config, shard_of
    from lima_eval.pipeline import run as run_pipeline

    if shard is not None:
        i, n = shard_of(shard)
        overrides = (*overrides, f"benchmark.shard={i}/{n}")
    cfg = load_config(config, overrides)
    if shard is not None:
        cfg.name = f"{cfg.name}-shard-{i}-of-{n}"
    if dry_run:
        from lima_eval.forecast import forecast, keys_line, table
        from lima_eval.pipeline import api_keys, preflight

        click.echo(table(forecast(cfg, preflight(cfg, keys=False), use_cache=not no_cache)))
        click.echo(keys_line(api_keys(cfg)))
        return
    started = time.monotonic()
    result = run_pipeline(cfg, show_progress=not no_progress, use_cache=not no_cache, wait=wait)
    g, j = result.generations, result.judgments
    click.echo(f"generations: {g.new} new, {g.cached} already on disk, {g.errors} failed", err=True)
    click.echo(f"judgments:   {j.new} new ({j.cache_hits} from the judge cache), {j.cached} already on disk, "
               f"{j.errors} without a verdict ({j.failed_calls} failed calls)", err=True)
    if g.missing_imports:
        click.echo(f"imported answers missing: {g.missing_imports} (see lima-eval import-answers)", err=True)
    if result.skipped_pairs:
        click.echo(f"pairs not judged because an answer is missing: {result.skipped_pairs}", err=True)
    if result.calls == 0:
        click.echo("nothing to do: 0 new model or judge calls (all work was already on disk)", err=True)
    else:
        click.echo(f"model and judge calls: {result.calls} in {time.monotonic() - started:.0f}s", err=True)
    click.echo(f"report: {result.report_dir / 'report.md'}")
    failed = [f"{g.errors} generation(s)"] if g.errors else []
    failed += [f"{j.failed_calls} judge call(s)"] if j.failed_calls else []
    if failed:
        raise LimaEvalError(f"{' and '.join(failed)} failed after every retry (recorded with their error); "
                            "run the same command again to retry only those")


@cli.command(context_settings={"ignore_unknown_options": False})
@click.option("--base", required=True, help="Pre-trained model: a folder, a Hugging Face id or embedded:NAME.")
@click.option("--data", required=True, help="'demo', 'GAIR/lima' (gated HF dataset) or a JSONL file.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the fine-tuned model.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a recipe setting, e.g. --set epochs=5 --set lora=true (see docs/sft.md).")
@click.option("--select-on", "select_on", type=click.Path(dir_okay=False), default=None,
              help="Dev prompts (JSONL/CSV): generate with each kept epoch model and pick the best by the judge.")
@click.option("--judge", "judge_name", default="lima-pairwise", show_default=True,
              help="Judge definition used by --select-on.")
@click.option("--judge-set", "judge_overrides", multiple=True, metavar="KEY=VALUE",
              help="Judge endpoint settings for --select-on, e.g. --judge-set backend=openai --judge-set model=gpt-4o.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bars.")
def sft(base: str, data: str, out: str, overrides: tuple[str, ...], select_on: str | None, judge_name: str,
        judge_overrides: tuple[str, ...], no_progress: bool) -> None:
    """Fine-tune BASE on DATA with LIMA's recipe (15 epochs, lr 1e-5 -> 1e-6, EOT, residual dropout)."""
    from lima_eval.sft.cli_support import sft_config_from
    from lima_eval.sft.train import train

    cfg = sft_config_from(base, data, out, overrides)
    path = train(cfg, show_progress=not no_progress)
    if int(os.environ.get("RANK", "0")) != 0:  # under accelerate/torchrun only rank 0 reports and selects
        return
    click.echo(f"model: {path}")
    if select_on:
        from lima_eval.selection import select_checkpoint

        best = select_checkpoint(cfg, Path(select_on), judge_name, judge_overrides, show_progress=not no_progress)
        click.echo(f"best checkpoint: {best}")


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--anchor", default=None, help="Model whose Bradley-Terry rating is 1000 (default: the first baseline).")
def report(run_dir: Path, anchor: str | None) -> None:
    """Rebuild RUN_DIR/report/ from what is on disk (no model or judge calls): summary.json, CSVs, report.md,
    figures and report.html."""
    from lima_eval.report.build import build_report

    # A short-lived process that builds millions of acyclic records and arrays: the cyclic collector would
    # only rescan them (about a tenth of the time of a report on a million judgments).
    gc.disable()
    out = build_report(run_dir, anchor=anchor)
    click.echo(f"report: {out / 'report.md'}")


@cli.command()
@click.argument("results", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to write it (default: RESULTS/leaderboard).")
@click.option("--judges", is_flag=True, help="The judges instead: every judge card under RESULTS/judge-cards side "
              "by side (judges.csv / .md / .html / .png).")
def leaderboard(results: Path, out: Path | None, judges: bool) -> None:
    """Merge every run under RESULTS into one table per judge and benchmark (CSV, Markdown, HTML, PNG)."""
    from lima_eval.report.leaderboard import write_judges_board, write_leaderboard

    if judges:
        folder = write_judges_board(results, out)
        click.echo(f"judges leaderboard: {folder / 'judges.md'}")
        return
    folder = write_leaderboard(results, out)
    click.echo(f"leaderboard: {folder / 'leaderboard.md'}")


@cli.command()
@click.argument("new_run", type=click.Path(file_okay=False, path_type=Path))
@click.option("--against", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The last good run: rules compare with it, paired over the prompts both runs share.")
@click.option("--rules", "rules_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A thresholds YAML (min_win_rate / max_drop / max_fail_share rules; see README).")
@click.option("--max-drop", type=float, default=0.0, show_default=True,
              help="Without --rules: the largest allowed drop of every win rate both runs have.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the results as JSON here.")
def check(new_run: Path, against: Path | None, rules_path: Path | None, max_drop: float,
          json_out: Path | None) -> None:
    """Regression gate on runs already on disk: exit 0 if every rule holds, 1 if one fails, 2 if the input
    cannot be checked. A rule fails only when its whole 95% interval is on the wrong side (noise passes)."""
    from lima_eval.check import CheckInputError, as_dict, run_check, table

    try:
        results = run_check(new_run, against, rules_path, max_drop)
    except CheckInputError:
        raise
    except LimaEvalError as exc:  # a run that cannot be read is input the gate cannot use
        raise CheckInputError(str(exc)) from exc
    click.echo(table(results))
    if json_out is not None:
        json_out.write_text(json.dumps([as_dict(r) for r in results], indent=2) + "\n", encoding="utf-8")
    failed = [r for r in results if not r.passed]
    if failed:
        click.echo(f"{len(failed)} of {len(results)} rule(s) failed", err=True)
        sys.exit(1)
    click.echo(f"all {len(results)} rule(s) hold", err=True)


@cli.command("import-human")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.argument("csv_file", metavar="FILE.csv", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--skip-bad-rows", is_flag=True, help="Import the good rows and list the bad ones.")
def import_human(run_dir: Path, csv_file: Path, skip_bad_rows: bool) -> None:
    """Add human labels to a run: pairwise (prompt_id, model_a, model_b, label a|b|tie, annotator[, comment])
    or ratings (prompt_id, model, label fail|pass|excellent or 1-6, annotator[, comment])."""
    from lima_eval.judging.human import import_human as do_import
    from lima_eval.report.build import build_report

    result = do_import(run_dir, csv_file, skip_bad_rows=skip_bad_rows)
    for problem in result.skipped:
        click.echo(f"skipped {csv_file}, {problem}", err=True)
    click.echo(f"imported {result.imported} label(s); {result.already} already there; "
               f"{len(result.skipped)} bad row(s) skipped"
               + (f"; {result.unlabelled} row(s) not labelled yet" if result.unlabelled else ""),
               err=True)
    out = build_report(run_dir)
    click.echo(f"report: {out / 'report.md'}")


@cli.group()
def judges() -> None:
    """The judges lima-eval knows (folders in judges/, ./judges, $LIMA_EVAL_JUDGES_PATH, or plugins)."""


@judges.command("list")
def judges_list() -> None:
    """Name, kind, where it comes from and what it does, one judge per line."""
    from lima_eval.judging.definitions import available, read_folder

    for name, (folder, source) in available().items():
        d = read_folder(folder, name, source)
        scale = f" [{'/'.join(d.labels)}]" if d.labels else ""
        click.echo(f"{name}\t{d.kind}{scale}\t{source}\t{d.description}")


@cli.command()
@click.argument("run_dir", metavar="RUN", type=click.Path(file_okay=False, path_type=Path))
@click.option("--task", type=click.Choice(["pairwise", "absolute"]), default=None,
              help="pairwise: which of two answers is significantly better, or neither (default); absolute: "
                   "fail / pass / excellent for one answer.")
@click.option("--annotators", type=click.IntRange(min=1, max=1000), default=None,
              help="Make N annotators (ann1..annN), each with a secret link.")
@click.option("--tokens", "tokens_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Annotators and their tokens instead: NAME,TOKEN per line.")
@click.option("--overlap", type=click.IntRange(min=1), default=None,
              help="How many different people label each item (default 1; at most the number of annotators).")
@click.option("--queue", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Label only these pairs: a human queue CSV (as a jury writes to RUN/human-queue/).")
@click.option("--gold", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Gold items, mixed into every queue to catch careless labelling: import-human's CSV with the "
                   "label each must get.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the shuffles and answer orders.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on; anything but loopback exposes the app to your network.")
@click.option("--port", type=click.IntRange(min=0, max=65535), default=8400, show_default=True,
              help="Port (0: a free one).")
def annotate(run_dir: Path, task: str | None, annotators: int | None, tokens_file: Path | None,
             overlap: int | None, queue: Path | None, gold: Path | None, seed: int, host: str, port: int) -> None:
    """Serve a blind labelling app for a run's answers (LIMA's human study): one secret link per annotator and
    one admin link. Labels go straight into the run's human labels; `lima-eval report` shows them."""
    from lima_eval.annotate.cli import start

    start(run_dir, task, annotators, tokens_file, overlap, queue, gold, seed, host, port)


@cli.command()
@click.option("--effect", type=float, default=0.05, show_default=True,
              help="The win-rate difference to detect (0.05: five points).")
@click.option("--pilot", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="A run to learn the spread of scores from (and report how well its models separate).")
@click.option("--power", type=float, default=0.8, show_default=True, help="Probability of detecting it.")
@click.option("--level", type=float, default=0.95, show_default=True, help="Confidence level of the test.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def plan(effect: float, pilot: Path | None, power: float, level: float, as_json: bool) -> None:
    """How many prompts a comparison needs: a model against a baseline, and two checkpoints paired on the same
    prompts; with --pilot, the spread comes from that run and its models' separability is reported."""
    from lima_eval.plan import describe, make_plan

    p = make_plan(effect, power, level, pilot)
    click.echo(json.dumps(p.as_dict(), indent=2) if as_json else "\n".join(describe(p)))


@cli.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The merged run folder (new, or a run of the same config to add to).")
def merge(runs: tuple[Path, ...], out: Path) -> None:
    """Combine shard folders (lima-eval run --shard) into one run: records are content-addressed, so identical
    ids are kept once and two different records under one id are an error; then write its report."""
    from lima_eval.merge import merge_runs, missing_shards
    from lima_eval.report.build import build_report

    counts = merge_runs(list(runs), out)
    for name, n in counts.items():
        click.echo(f"{name}: {n} record(s)", err=True)
    n, missing = missing_shards([out])  # what the merged run now holds, this merge and earlier ones
    if missing:
        click.echo(f"merge: shard(s) {', '.join(f'{i}/{n}' for i in missing)} not among the folders: the merged run "
                   f"lacks their prompts; merge them in later, or `lima-eval run {out / 'config.yaml'}` does them",
                   err=True)
    click.echo(f"report: {build_report(out) / 'report.md'}")


@cli.command("judge-card")
@click.argument("judge")
@click.option("--gold", required=True, help="pandalm, mt-bench-human, a PandaLM-format file, or a run folder "
              "with human pairwise labels.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="The judge's endpoint, as in a run config's judge: section, e.g. --set backend=openai "
                   "--set model=gpt-4o (repeatable).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N gold items.")
@click.option("--repeats", type=click.IntRange(min=1), default=1, show_default=True,
              help="Judge every item K times (seeds 0..K-1) to measure how much the verdicts move.")
@click.option("--results", type=click.Path(file_okay=False, path_type=Path), default=Path("results"),
              show_default=True, help="Results folder; cards go to RESULTS/judge-cards/.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bars.")
@click.option("--no-cache", is_flag=True, help="Ask the judge again instead of reusing cached replies.")
def judge_card_cmd(judge: str, gold: str, overrides: tuple[str, ...], limit: int | None, repeats: int,
                   results: Path, no_progress: bool, no_cache: bool) -> None:
    """Measure JUDGE against people on a gold set: agreement with the human majority next to the human ceiling,
    position and length bias, stability, cost. JUDGE is a judge name or folder, or a YAML file holding a judge
    section (a jury, say) or a run config (its judge). Writes judge_card.json and .md."""
    from lima_eval.judge_card import CARD_MD, judge_section, make_card

    spec = judge_section(judge, overrides)
    folder = make_card(spec, gold, results, limit=limit, repeats=repeats, show=not no_progress,
                       use_cache=not no_cache)
    click.echo((folder / CARD_MD).read_text(encoding="utf-8"), err=True)
    click.echo(f"judge card: {folder / CARD_MD}")


@cli.command("backends")
def backends_cmd() -> None:
    """Each backend (built in or from a plugin), where it comes from, and its own options with their defaults."""
    from lima_eval.backends.base import describe_backends

    for line in describe_backends():
        click.echo(line)


@cli.command("import-judgments")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.argument("file", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=FormatChoice("judgments"), required=True)
def import_judgments_cmd(run_dir: Path, file: Path, fmt: str) -> None:
    """Add a foreign judgment file (AlpacaEval annotations.json, MT-bench pairwise JSONL, PandaLM test set) to
    RUN_DIR (created if new) and rebuild its report."""
    from lima_eval.judging.foreign import import_judgments
    from lima_eval.report.build import build_report

    result = import_judgments(run_dir, file, fmt)
    click.echo(f"imported {result.imported} judgment(s) from {file}; {result.already} already there; "
               f"{result.unparsed} without a verdict (kept as errors)", err=True)
    if result.duplicates:
        click.echo(f"{result.duplicates} row(s) repeat an earlier row of the file with the same label (counted once)",
                   err=True)
    if result.unmatched:
        click.echo(f"{len(result.unmatched)} row(s) not imported: their instruction is none of the run's prompts "
                   f"({', '.join(result.unmatched[:5])}{', ...' if len(result.unmatched) > 5 else ''})", err=True)
    out = build_report(run_dir)
    click.echo(f"report: {out / 'report.md'}")


@cli.command("import-answers")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.argument("answers_file", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", required=True, help="The run's model (backend: imported) these answers belong to.")
@click.option("--format", "fmt", type=FormatChoice("answers", "auto"), default="auto", show_default=True)
def import_answers_cmd(run_dir: Path, answers_file: Path, model: str, fmt: str) -> None:
    """Turn existing answers (AlpacaEval, MT-bench or plain JSONL) into Generations of MODEL."""
    from lima_eval.answers import import_answers

    result = import_answers(run_dir, answers_file, model, fmt)
    for line in result.unmatched:
        click.echo(f"unmatched {answers_file}, {line}", err=True)
    click.echo(f"imported {result.imported} answer(s) for {model}; {result.already} already there; "
               f"{len(result.unmatched)} row(s) matched no prompt", err=True)


def main(argv: list[str] | None = None) -> Any:
    """Entry point: run click, turning LimaEvalError into one clean message and exit code 1."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        return cli.main(args=argv, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except LimaEvalError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except RecursionError:  # every reader caps nesting; this is the guard behind them, never a traceback
        if debug:
            raise
        click.echo("error: a file nested too deeply to read (over Python's recursion limit); --debug shows where",
                   err=True)
        sys.exit(2 if (argv if argv is not None else sys.argv[1:])[:1] == ["check"] else 1)
    except KeyboardInterrupt:
        click.echo("interrupted: finished work is saved; run the same command again to continue", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
