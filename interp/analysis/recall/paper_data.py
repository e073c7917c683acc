"""The lost-in-the-middle paper's own files, vendored, and its closed-book / oracle NQ-open setting.

Liu et al. (TACL 2024, arXiv:2307.03172) released their inputs; two are vendored in
``experiments/data/lost_in_the_middle/`` (sources and licence in ``experiments/data/SOURCES.md``):

- ``kv-retrieval-75_keys.jsonl.gz``: 500 JSON objects of 75 UUID pairs, read by the existing
  ``loaders.load_kv_file`` as the ``kv`` task; the paper's KV figure sweeps the gold pair over positions
  (``interp lost-in-middle --task kv --file ...``).
- ``nq-open-oracle.jsonl.gz``: 2,655 NaturalQuestions-Open questions, each with only its gold passage.
  The paper's Table 1 reads it two ways: *oracle* (the question after that one passage: ``load_qa_file``
  as the ``qa`` task with one document) and *closed-book* (the question alone, the paper's
  ``closedbook_qa.prompt``: ``Question: {question}\\nAnswer:``). The gap between the two says how much a
  model gains from the passage, the ceiling of the multi-document curve.

The 10/20/30-document QA files (and the 300-key KV file) are not vendored: the repository snapshot we
could fetch lists them but lacks their contents (its largest blobs are left out). The 140-key KV file
was there but is not needed for the paper's 75-key figure. Scoring is the paper's (``prompts.is_correct``:
a normalised gold answer is a substring of the first line of the greedy answer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from interp.analysis.recall.loaders import load_kv_file, load_qa_file
from interp.analysis.recall.prompts import RecallExample, is_correct
from interp.analysis.recall.stats import wilson
from interp.errors import InvalidInputError
from interp.model.generate import generate

DATA = Path(__file__).resolve().parents[3] / "experiments" / "data" / "lost_in_the_middle"
KV_75 = DATA / "kv-retrieval-75_keys.jsonl.gz"
NQ_ORACLE = DATA / "nq-open-oracle.jsonl.gz"
CLOSED_BOOK_TEMPLATE = "Question: {question}\nAnswer:"  # the paper's prompts/closedbook_qa.prompt, stripped
QA_NEW_TOKENS = 10  # the same greedy budget the recall sweep gives QA answers


def load_kv_75(limit: int | None = None) -> list[RecallExample]:
    """The paper's 75-key KV retrieval examples (gold pair where the file has it)."""
    return load_kv_file(KV_75, limit=limit)


def load_nq_oracle(path: str | Path = NQ_ORACLE, limit: int | None = None) -> list[RecallExample]:
    """NQ-open with only the gold passage, as one-document QA examples (the paper's oracle setting)."""
    return load_qa_file(path, limit=limit)


@dataclass(frozen=True)
class ClosedBookExample:
    """A question with no context: the paper's closed-book prompt, and its gold answers."""

    question: str
    answers: tuple[str, ...]
    example_id: str = ""

    def prompt(self) -> str:
        return CLOSED_BOOK_TEMPLATE.format(question=self.question)


def closed_book(examples: Sequence[RecallExample]) -> list[ClosedBookExample]:
    """The same questions without their passages (same example ids, so the two settings pair up)."""
    for e in examples:
        if e.task != "qa":
            raise InvalidInputError(f"Closed-book needs QA examples; {e.example_id or 'an example'} is {e.task!r}.")
    return [ClosedBookExample(e.question, e.answers, e.example_id) for e in examples]


def score_answers(model, prompts: Sequence[str], answers: Sequence[Sequence[str]], *,
                  max_new_tokens: int = QA_NEW_TOKENS, batch_size: int = 8) -> list[dict]:
    """Greedy answers to each prompt and whether the paper's scorer accepts them: [{prediction, correct}]."""
    if len(prompts) != len(answers):
        raise InvalidInputError(f"{len(prompts)} prompts but {len(answers)} answer lists.")
    if batch_size < 1:
        raise InvalidInputError(f"The batch size must be at least 1, got {batch_size}.")
    rows: list[dict] = []
    for start in range(0, len(prompts), batch_size):
        batch = list(prompts[start:start + batch_size])
        # interp's own generate: the continuation only, greedy (Transformer.generate is TransformerLens' meaning)
        predictions = generate(model, batch, max_new_tokens=max_new_tokens, temperature=0.0)
        if isinstance(predictions, str):  # one prompt in, one string out
            predictions = [predictions]
        for pred, gold in zip(predictions, answers[start:start + batch_size]):
            rows.append({"prediction": pred, "correct": is_correct(pred, gold)})
    return rows


def oracle_and_closed_book(model, examples: Sequence[RecallExample], **kwargs) -> dict:
    """Accuracy (with Wilson 95% intervals) on the same questions with their gold passage and without it.

    ``examples`` are oracle QA examples (``load_nq_oracle``); ``kwargs`` go to :func:`score_answers`.
    Returns {"n", "oracle": {...}, "closed_book": {...}, "rows": [per question]}.
    """
    books = closed_book(examples)
    answers = [e.answers for e in examples]
    oracle = score_answers(model, [e.prompt() for e in examples], answers, **kwargs)
    closed = score_answers(model, [b.prompt() for b in books], answers, **kwargs)
    out: dict = {"n": len(examples)}
    for name, rows in (("oracle", oracle), ("closed_book", closed)):
        k = sum(r["correct"] for r in rows)
        lo, hi = wilson(k, len(rows))
        out[name] = {"accuracy": k / len(rows) if rows else float("nan"), "ci95": [lo, hi]}
    out["rows"] = [{"example_id": e.example_id, "oracle": o["prediction"], "oracle_correct": o["correct"],
                    "closed_book": c["prediction"], "closed_book_correct": c["correct"]}
                   for e, o, c in zip(examples, oracle, closed)]
    return out


def run_nq(model, n: int | None, seed: int = 0, **kwargs) -> dict:
    """Oracle and closed-book accuracy on n NQ-open questions drawn at random (seeded; all when n is None)."""
    from interp.analysis.facts.records import draw

    examples = draw(load_nq_oracle(), n, seed)
    return {"n_drawn": n, "seed": seed, **oracle_and_closed_book(model, examples, **kwargs)}


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m interp.analysis.recall.paper_data --model M --n N --out FILE``: the NQ-open table row."""
    import argparse
    import json

    from interp.model.load import load_model

    parser = argparse.ArgumentParser(description="NQ-open oracle vs closed-book accuracy (Liu et al. 2024).")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--n", type=int, default=None, help="questions drawn at random (default: all 2,655)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=QA_NEW_TOKENS,
                        help=f"greedy tokens per answer (default {QA_NEW_TOKENS}; the paper generated up to 100)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    from interp.analysis.recall.kv75 import code_commit

    commit = code_commit()
    out = run_nq(load_model(args.model), args.n, args.seed, batch_size=args.batch_size,
                 max_new_tokens=args.max_new_tokens)
    command = (f"python -m interp.analysis.recall.paper_data --model {args.model}"
               + (f" --n {args.n}" if args.n is not None else "") + f" --seed {args.seed}"
               f" --batch-size {args.batch_size} --max-new-tokens {args.max_new_tokens} --out {args.out}")
    head = {"model": args.model, "commit": commit, "command": command, "max_new_tokens": args.max_new_tokens,
            "rule": "a gold answer, SQuAD-normalised, is a substring of the normalised first line of the greedy "
                    "answer (the paper's evaluate_qa_responses.py / best_subspan_em)"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**head, **out}, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{args.model}: oracle {out['oracle']['accuracy']:.3f} {out['oracle']['ci95']}, closed-book "
          f"{out['closed_book']['accuracy']:.3f} {out['closed_book']['ci95']} on n = {out['n']}; wrote {args.out}")


if __name__ == "__main__":
    main()
