"""Import judgment files written by other tools, so their labels can be analysed like our own.

  alpaca-eval    AlpacaEval annotations.json: preference 1 (output_1 wins) / 2 (output_2 wins) / 1.5 or legacy 0
                 (draw) / continuous in [1, 2] for weighted annotators (kept as it is) / null (unparsed: an error).
                 model_a = generator_1 (the baseline), model_b = generator_2.
  mt-bench-pair  FastChat llm_judge pairwise JSONL: one line per pair and turn, judged in both orders (g1: model_1
                 shown first, g2: model_2 shown first) -> two judgments. Lines of MT-bench's human judgments
                 (model_a, model_b, winner, judge) are read too.
  pandalm        PandaLM's test set: annotator1..3 (humans; "0" tie, "1" response1, "2" response2) -> three human
                 judgments per row; or PandaLM's judge result files (gpt_result / pandalm_result on the same idx).
  mt-bench-single  FastChat llm_judge single-answer grades (gpt-4_single.jsonl): question_id, model, judge
                 ([model, template]), score (1-10; -1: the grade could not be read), turn (1 / 2) -> Ratings on
                 the mt-bench scale, judge `mt-bench-single:<judge model>`, in RUN/imported_ratings.jsonl.

Each is a JudgmentsFormat class in the import format registry (judging/formats.py), registered as
`judgments.<name>`; a plugin's format is used the same way. Every row is checked; the first bad one stops the
import with the file, row/line and field, before anything is written. Imported records go to
RUN/imported_judgments.jsonl; rows already there are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from lima_eval.benchmarks import IMPORTED
from lima_eval.config import BenchmarkSpec, ModelSpec, RunConfig, to_plain
from lima_eval.errors import InputError
from lima_eval.inputs import json_rows, shown
from lima_eval.judging.formats import ImportFormat, get
from lima_eval.lock import writes_run
from lima_eval.records import HUMAN, Generation, Judgment, Rating, content_id
from lima_eval.run import Run
from lima_eval.store import RunStore, append_jsonl, read_jsonl


@dataclass
class ForeignResult:
    imported: int = 0
    already: int = 0
    unparsed: int = 0
    duplicates: int = 0  # rows repeated in the file with the same label (counted once)
    unmatched: list[str] = field(default_factory=list)  # rows whose instruction is none of the run's prompts


def text_key(text: str) -> str:
    """Prompt texts are matched with their whitespace normalised (a trailing space must not misfile a row)."""
    return " ".join(text.split())


def _need(row: Any, key: str, path: Path, line: int, kind: type | tuple[type, ...] = str) -> Any:
    if not isinstance(row, dict):
        raise InputError(path, "expected a JSON object", line=line)
    if key not in row:
        raise InputError(path, "missing", line=line, field=key)
    value = row[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InputError(path, f"expected {getattr(kind, '__name__', 'a value')}, got {shown(value)}"[:120], line=line,
                         field=key)
    if key in NAME_KEYS and (not str(value).strip() or any(ord(c) < 32 or ord(c) == 127 for c in str(value))):
        raise InputError(path, f"not a name: {shown(value)} (empty, or a control character)"[:120], line=line,
                         field=key)
    return value


# Fields that name a model or a judge: they become model names of the run's config.
NAME_KEYS = frozenset({"generator_1", "generator_2", "annotator", "model_1", "model_2", "model_a", "model_b"})


def _verdict_from_preference(p: float | None) -> str | None:
    if p is None:
        return None
    if p == 0 or p == 1.5:
        return "tie"
    return "a" if p < 1.5 else "b"


@dataclass
class Context:
    """What the run already knows (instruction text -> prompt id; prompt id -> the pair it compares and
    the generations), and what a reader found besides judgments: the answers and the prompt texts."""

    prompt_ids: dict[str, str]  # text_key(prompt text) -> prompt id, of the prompts the run already has
    pairs: dict[str, tuple[str, str, str | None, str | None]]
    answers: dict[str, Generation] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    fixed_prompts: bool = False  # a real run: its prompts are its benchmark's; an instruction must be one of them
    unmatched: list[str] = field(default_factory=list)
    seen: dict[str, tuple[int, Any]] = field(default_factory=dict)  # record id -> (line, label) first seen
    duplicates: int = 0

    def prompt_for(self, instruction: str, line: int) -> str | None:
        """The id of the run's prompt with this text; a new id for a new text in a run made by imports (the row
        index where it is free, as AlpacaEval's eval set numbers its rows); None (and the row reported) where a
        real run has no such prompt."""
        key = text_key(instruction)
        if key in self.prompt_ids:
            return self.prompt_ids[key]
        if self.fixed_prompts:
            self.unmatched.append(f"line {line}")
            return None
        taken = set(self.prompt_ids.values())
        pid = str(line - 1) if str(line - 1) not in taken else content_id("prompt-text", key)[:12]
        self.prompt_ids[key] = pid
        return pid

    def first(self, record_id: str, label: Any, path: Path, line: int, field_name: str) -> bool:
        """Whether this is the first row of its item; a repeat with the same label is counted, one with another
        label is an error naming both lines."""
        if record_id not in self.seen:
            self.seen[record_id] = (line, label)
            return True
        first_line, first_label = self.seen[record_id]
        if first_label != label:
            raise InputError(path, f"the same item as line {first_line} with another label "
                                   f"({shown(first_label)} there, {shown(label)} here)", line=line, field=field_name)
        self.duplicates += 1
        return False

    def answer(self, prompt_id: str, model: str, text: Any) -> str | None:
        """Keep an answer from the file as an imported Generation; returns its id."""
        if not isinstance(text, str):
            return None
        gid = content_id("imported-answer", prompt_id, model, text)
        self.answers.setdefault(gid, Generation(id=gid, prompt_id=prompt_id, model=model, text=text,
                                                backend="imported"))
        return gid


class JudgmentsFormat(ImportFormat):
    """A kind of judgments file (`lima-eval import-judgments --format NAME`): `read` checks every row and turns
    the file into records, filing each row's instruction under a prompt through `ctx`."""

    family: ClassVar[str] = "judgments"
    gives_ratings: ClassVar[bool] = False  # its records are Ratings (RUN/imported_ratings.jsonl), not Judgments
    baseline_first: ClassVar[bool] = False  # a run made by imports takes each record's model_a as a baseline

    def read(self, path: Path, ctx: Context) -> list[Any]:
        """The file's records (Judgments, or Ratings where gives_ratings); a bad row is an InputError."""
        raise NotImplementedError


class AlpacaEvalJudgments(JudgmentsFormat):
    """AlpacaEval's annotations.json; generator_1 (model_a) is the baseline of a run made by imports."""

    name = "alpaca-eval"
    rank = 10
    baseline_first = True

    def read(self, path: Path, ctx: Context) -> list[Any]:
        out = []
        for n, row in json_rows(path):
            instruction = _need(row, "instruction", path, n)
            g1, g2 = _need(row, "generator_1", path, n), _need(row, "generator_2", path, n)
            annotator = _need(row, "annotator", path, n)
            if "preference" not in row:
                raise InputError(path, "missing", line=n, field="preference")
            pref = row["preference"]
            if pref is not None and (isinstance(pref, bool) or not isinstance(pref, (int, float))
                                     or not (pref == 0 or 1 <= pref <= 2)):
                raise InputError(path, f"expected 1, 2, 1.5, 0 or a number in [1, 2], got {shown(pref)}", line=n,
                                 field="preference")
            rid = content_id("alpaca-eval", annotator, instruction, g1, g2)
            if not ctx.first(rid, pref, path, n, "preference"):
                continue
            pid = ctx.prompt_for(instruction, n)
            if pid is None:
                continue
            ctx.texts.setdefault(pid, instruction)
            verdict = _verdict_from_preference(pref)
            out.append(Judgment(
                id=rid, prompt_id=pid, model_a=g1, model_b=g2,
                generation_a=ctx.answer(pid, g1, row.get("output_1")),
                generation_b=ctx.answer(pid, g2, row.get("output_2")),
                judge=f"alpaca-eval:{annotator}", verdict=verdict,  # type: ignore[arg-type]
                preference=float(pref) if pref is not None else None,
                error=None if verdict else "no preference (the annotator's output was not parsed)",
                error_kind=None if verdict else "parse"))
        return out


_MT_WINNER = {"model_1": "a", "model_2": "b", "model_a": "a", "model_b": "b", "tie": "tie",
              "tie (inconsistent)": "tie"}


class MTBenchPair(JudgmentsFormat):
    """FastChat llm_judge pairwise JSONL (both orders of a model judge), or MT-bench's human votes."""

    name = "mt-bench-pair"
    rank = 20

    def read(self, path: Path, ctx: Context) -> list[Any]:
        out = []
        for n, row in json_rows(path):
            qid = str(_need(row, "question_id", path, n, (int, str)))
            turn = _need(row, "turn", path, n, int) - 1 if "turn" in row else 0
            if "g1_winner" in row:  # a model judge, both orders
                m1, m2 = _need(row, "model_1", path, n), _need(row, "model_2", path, n)
                judge = row.get("judge")
                name = "-".join(str(x) for x in judge) if isinstance(judge, list) else str(judge or "judge")
                orders: tuple[tuple[str, str, Literal["a", "b"]], ...] = (("g1", "g1_winner", "a"),
                                                                          ("g2", "g2_winner", "b"))
                labels = (_need(row, "g1_winner", path, n), _need(row, "g2_winner", path, n))
                if not ctx.first(content_id("mt-bench-pair", name, qid, turn, m1, m2), labels, path, n, "g1_winner"):
                    continue
                for order, key, shown in orders:
                    w = _need(row, key, path, n)
                    verdict = _MT_WINNER.get(w)
                    if verdict is None and w != "error":
                        raise InputError(path, f"'{w}' is not one of model_1, model_2, tie, error", line=n, field=key)
                    out.append(Judgment(
                        id=content_id("mt-bench-pair", name, qid, turn, m1, m2, order), prompt_id=qid, model_a=m1,
                        model_b=m2, judge=f"mt-bench:{name}", verdict=verdict,  # type: ignore[arg-type]
                        shown_first=shown, turn=turn, raw=str(row.get(f"{order}_judgment") or ""),
                        error=None if verdict else "the judge gave no verdict",
                        error_kind=None if verdict else "parse"))
            else:  # human votes: model_a, model_b, winner, judge (annotator id)
                ma, mb = _need(row, "model_a", path, n), _need(row, "model_b", path, n)
                w = _need(row, "winner", path, n)
                if w not in _MT_WINNER:
                    raise InputError(path, f"'{w}' is not one of model_a, model_b, tie", line=n, field="winner")
                annotator = str(row.get("judge") or "human")
                if not ctx.first(content_id("mt-bench-human", annotator, qid, turn, ma, mb), w, path, n, "winner"):
                    continue
                out.append(Judgment(
                    id=content_id("mt-bench-human", annotator, qid, turn, ma, mb), prompt_id=qid, model_a=ma,
                    model_b=mb,
                    judge=HUMAN, annotator=annotator, verdict=_MT_WINNER[w], turn=turn))  # type: ignore[arg-type]
        return out


_PANDA = {"0": "tie", "1": "a", "2": "b", "tie": "tie"}
_PANDA_HUMANS = ("annotator1", "annotator2", "annotator3")
_PANDA_JUDGES = {"gpt_result": "pandalm:gpt-3.5-turbo", "pandalm_result": "pandalm:pandalm-7b"}


class PandaLMJudgments(JudgmentsFormat):
    """PandaLM's test set (three annotators) or its judges' result files."""

    name = "pandalm"
    rank = 30

    def read(self, path: Path, ctx: Context) -> list[Any]:
        rows = json_rows(path)
        out = []
        for n, row in rows:
            idx = str(_need(row, "idx", path, n, (int, str)))
            judges: list[tuple[str, str | None, str]] = [(k, k, HUMAN) for k in _PANDA_HUMANS if k in row]
            if not judges:
                judges = [(k, None, name) for k, name in _PANDA_JUDGES.items() if k in row]
            if not judges:
                raise InputError(path, "no label: expected annotator1..3, gpt_result or pandalm_result", line=n,
                                 field="annotator1")
            key = row.get("cmp_key")
            if isinstance(key, str) and "_" in key:
                m1, m2 = key.split("_", 1)
                ga, gb = ctx.answer(idx, m1, row.get("response1")), ctx.answer(idx, m2, row.get("response2"))
            elif idx in ctx.pairs:  # a judge result file: no model names or answers; they come from the test set
                m1, m2, ga, gb = ctx.pairs[idx]
            else:
                raise InputError(path, "no model names (cmp_key) and no row with this idx imported before: import "
                                       "PandaLM's test set (testset-v1.json) into this run first", line=n,
                                 field="cmp_key")
            if isinstance(row.get("instruction"), str):
                extra = row.get("input")
                ctx.texts.setdefault(idx, row["instruction"]
                                     + (f"\n\n{extra}" if isinstance(extra, str) and extra else ""))
            for key_name, annotator, judge in judges:
                value = str(row[key_name]).strip().lower()
                verdict = _PANDA.get(value)
                if verdict is None and value != "garbage":
                    raise InputError(path, f"'{row[key_name]}' is not one of 0 (tie), 1, 2", line=n, field=key_name)
                rid = content_id("pandalm", judge, annotator, idx, m1, m2)
                if not ctx.first(rid, verdict, path, n, key_name):
                    continue
                out.append(Judgment(
                    id=rid, prompt_id=idx, model_a=m1, model_b=m2, judge=judge,
                    generation_a=ga, generation_b=gb,
                    annotator=annotator, verdict=verdict,  # type: ignore[arg-type]
                    error=None if verdict else f"unparsed judge output ({shown(row[key_name])})",
                    error_kind=None if verdict else "parse"))
        return out


class MTBenchSingle(JudgmentsFormat):
    """FastChat llm_judge single-answer grades: Ratings on the mt-bench scale."""

    name = "mt-bench-single"
    rank = 40
    gives_ratings = True

    def read(self, path: Path, ctx: Context) -> list[Any]:
        out = []
        for n, row in json_rows(path):
            qid = str(_need(row, "question_id", path, n, (int, str)))
            model = _need(row, "model", path, n)
            judge = row.get("judge")
            if (not (isinstance(judge, list) and judge and all(isinstance(x, str) for x in judge))
                    and not isinstance(judge, str)):
                raise InputError(path, "expected [judge model, template] or a judge name", line=n, field="judge")
            who, template = (judge[0], "-".join(judge[1:])) if isinstance(judge, list) else (judge, "")
            turn = _need(row, "turn", path, n, int)
            if turn not in (1, 2):
                raise InputError(path, f"{shown(turn)} is not 1 or 2", line=n, field="turn")
            score = _need(row, "score", path, n, (int, float))
            if isinstance(score, bool) or not (score == -1 or 1 <= score <= 10):
                raise InputError(path, f"{shown(score)} is not a grade from 1 to 10 (or -1: unreadable)", line=n,
                                 field="score")
            rid = content_id("mt-bench-single", who, qid, turn, model)
            if not ctx.first(rid, score, path, n, "score"):
                continue
            label = None if score == -1 else (str(int(score)) if float(score).is_integer() else str(score))
            out.append(Rating(id=rid, prompt_id=qid, model=model, judge=f"mt-bench-single:{who}", label=label,
                              scale="mt-bench", score=None if score == -1 else float(score), turn=turn - 1,
                              raw=str(row.get("judgment") or ""), comment=template or None,
                              error="the judge gave no readable grade" if score == -1 else None,
                              error_kind="parse" if score == -1 else None))
        return out


@writes_run
def import_judgments(run_dir: Path, path: Path, fmt: str) -> ForeignResult:
    """Validate the whole file, then append the judgments that are not in the run yet."""
    reader = get("judgments", fmt, JudgmentsFormat)
    store = RunStore(Path(run_dir))
    if reader.gives_ratings:
        return _import_ratings(store, Path(path), reader)
    existing = store.imported()
    prompt_ids, fixed = _prompt_ids(store)
    ctx = Context(prompt_ids, {j.prompt_id: (j.model_a, j.model_b, j.generation_a, j.generation_b)
                               for j in existing.values()}, fixed_prompts=fixed)
    records = reader.read(Path(path), ctx)
    if ctx.unmatched and not records:
        raise InputError(path, f"no row's instruction is a prompt of the run ({len(ctx.unmatched)} rows, the first "
                               f"on {ctx.unmatched[0]}); nothing imported")
    unique = list({r.id: r for r in reversed(records)}.values())[::-1]  # first of any repeated row
    new = [r for r in unique if r.id not in existing]
    _ensure_config(store, new, reader, ctx.texts)
    have = store.generations()
    store.append_generations([g for gid, g in ctx.answers.items() if gid not in have])
    store.append_imported(new)
    return ForeignResult(imported=len(new), already=len(unique) - len(new),
                         unparsed=sum(1 for r in new if r.verdict is None), duplicates=ctx.duplicates,
                         unmatched=ctx.unmatched)


def _import_ratings(store: Any, path: Path, reader: JudgmentsFormat) -> ForeignResult:
    """Grades (MT-bench single) into RUN/imported_ratings.jsonl; prompts are the rows' question ids."""
    prompt_ids, fixed = _prompt_ids(store)
    ctx = Context(prompt_ids, {}, fixed_prompts=fixed)
    records: list[Rating] = reader.read(path, ctx)
    if fixed:
        known = set(prompt_ids.values())
        unmatched = [r for r in records if r.prompt_id not in known]
        if unmatched and len(unmatched) == len(records):
            raise InputError(path, f"no row's question_id is a prompt of the run (the first: "
                                   f"'{unmatched[0].prompt_id}'); nothing imported")
        ctx.unmatched += [f"question_id {r.prompt_id}" for r in unmatched]
        records = [r for r in records if r.prompt_id in known]
    existing = store.imported_ratings()
    new = [r for r in records if r.id not in existing]
    _ensure_config(store, new, reader, {})
    store.append_imported_ratings(new)
    return ForeignResult(imported=len(new), already=len(records) - len(new),
                         unparsed=sum(1 for r in new if r.label is None), duplicates=ctx.duplicates,
                         unmatched=ctx.unmatched)


def _prompt_ids(store: Any) -> tuple[dict[str, str], bool]:
    """(text_key(prompt text) -> prompt id, whether the prompts are fixed). A real run's prompts are its
    benchmark's (fixed); a run made by imports has the texts earlier imports wrote to RUN/prompts.jsonl, and
    grows with new ones, so a second file in another row order files every row under the same prompt."""
    if not (store.root / "config.yaml").exists():
        return {}, False
    run = Run(store.root)
    if run.config.benchmark.name == IMPORTED:
        rows = read_jsonl(store.root / "prompts.jsonl")
        return {text_key(str(r.get("prompt", ""))): str(r["id"]) for r in rows if "id" in r}, False
    return {text_key(p.text): p.id for p in run.prompts}, True


def _ensure_config(store: Any, records: list[Any], reader: JudgmentsFormat, texts: dict[str, str]) -> None:
    """A run made by imports gets a config naming the imported models (the report needs models and baselines)
    and, when the file had them, the prompt texts in RUN/prompts.jsonl (for the answer browser)."""
    path = store.root / "config.yaml"
    data = store.read_config() if path.exists() else None
    if data is not None and (data.get("benchmark") or {}).get("name") != IMPORTED:
        return  # a real run: its config stays as it is; the report adds the imported pairs

    old = data or {}
    names = [m["name"] for m in old.get("models", [])]
    baselines = list(old.get("baselines", []))
    for r in records:
        for m in ((r.model,) if isinstance(r, Rating) else (r.model_a, r.model_b)):
            if m not in names:
                names.append(m)
        if reader.baseline_first and r.model_a not in baselines:
            baselines.append(r.model_a)
    prompts_path = store.root / "prompts.jsonl"
    known = {str(r["id"]) for r in read_jsonl(prompts_path)}
    append_jsonl(prompts_path, [{"id": pid, "prompt": text} for pid, text in texts.items() if pid not in known])
    bench = BenchmarkSpec(name=IMPORTED, path=str(prompts_path) if prompts_path.exists() else None)
    cfg = RunConfig(name=store.root.name, benchmark=bench, baselines=baselines,
                    round_robin=not baselines, output_dir=str(store.root.parent),
                    models=[ModelSpec(name=n, backend="imported", model=f"imported:{n}") for n in names])
    store.write_config(imported_config(cfg))


def imported_config(cfg: RunConfig) -> dict[str, Any]:
    """The config.yaml of a run made by imports: as written, without the default judge no one set (it never
    judged anything here; the labels name their own judges). A judge a user added stays."""
    plain = to_plain(cfg)
    if not cfg.judge.model.strip() and not cfg.judge.jury:
        del plain["judge"]
    if not cfg.judges:
        del plain["judges"]
    return plain
