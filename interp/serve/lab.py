"""The lab behind `interp serve`: one loaded model, probed and edited by one request at a time.

Everything here is a plain library call (no web framework): `predict` is `interp.analysis.inspect`,
`trace` is `interp.analysis.facts.run_trace` with the report's heatmaps, edits are
`interp.analysis.rome` `Edit` objects (computed with `rome_edit` / `memit_edit`, applied, undone exactly,
saved and loaded as edit files: `interp.serve.edit_files`; a fact file's batch is one such edit:
`interp.serve.batch_edit`). The web layer (`interp.serve.app`) only turns requests into these calls.

The model is shared, so every call takes one lock. A long call (a trace, an edit) publishes its progress
in `Lab.progress`; while one runs, other calls are refused at once with a sentence saying what the model
is doing, instead of queueing behind it (the page polls the progress and waits). Requests whose cost
grows with their size (prompt length, trace cells, upload bytes, stacked edits) are checked against
`Limits` first and refused in one sentence.
"""

from __future__ import annotations

import base64
import math
import tempfile
import threading
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from interp.errors import InvalidInputError
from interp.serve.limits import BusyError, Limits, NotFoundError, TooLargeError
from interp.serve.progress import Progress

__all__ = ["Lab", "Limits", "BusyError", "NotFoundError", "TooLargeError", "Progress"]


@dataclass
class ActiveEdit:
    id: int
    edit: object  # interp.analysis.rome.Edit
    source: str  # "computed" or "file"

    def to_json(self) -> dict:
        e = self.edit
        return {"id": self.id, "method": e.method, "layers": e.layers, "source": self.source, "created": e.created,
                "requests": [r.to_dict() | {"text": r.text} for r in e.requests],
                "rank": sum(d.rank for d in e.deltas)}


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


@dataclass
class Lab:
    model: object  # interp.model.transformer.Transformer
    limits: Limits = field(default_factory=Limits)
    stats: object = None  # interp.analysis.rome.StatsParams for the key statistics; None: the default
    progress: Progress = field(default_factory=Progress)
    edits: list[ActiveEdit] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._next_id = 1
        if self.model.tokenizer is None:
            raise InvalidInputError("This model has no tokenizer; interp serve needs one to read prompts.")

    # -- sharing the model ------------------------------------------------------------------------------
    @contextmanager
    def using_model(self, task: str | None = None):
        """Hold the model. task=None: a quick call; a named task is long and reports progress. Either waits
        behind a quick call and is refused at once while a long task runs."""
        if not self._lock.acquire(blocking=False):
            if self.progress.task is not None:
                raise BusyError(f"The model is busy with {self.progress.describe()}; try again when it finishes.")
            self._lock.acquire()  # behind a quick call: wait for it
        try:
            if task is not None:
                self.progress.start(task, self.limits.max_task_seconds)
            yield self.model
        finally:
            if task is not None:
                self.progress.finish()
            self._lock.release()

    # -- what the page needs to know --------------------------------------------------------------------
    def info(self) -> dict:
        from interp.analysis.rome.hparams import default_layer, default_memit_layers

        cfg = self.model.cfg
        return {"model": cfg.name, "n_layers": cfg.n_layers, "n_heads": cfg.n_heads, "n_kv_heads": cfg.n_kv_heads,
                "d_model": cfg.d_model, "d_mlp": cfg.d_mlp, "d_vocab": cfg.d_vocab, "n_ctx": cfg.n_ctx,
                "architecture": cfg.architecture, "device": str(self.model.device),
                "dtype": str(self.model.dtype).replace("torch.", ""),
                "rome_layer": default_layer(cfg.name, cfg.n_layers),
                "memit_layers": list(default_memit_layers(cfg.name, cfg.n_layers)),
                "limits": asdict(self.limits)}

    # -- checking input ---------------------------------------------------------------------------------
    def _text(self, value, what: str, tokens: int, empty: str | None = "give some text") -> str:
        """A text field checked before any work on it: text, valid Unicode, at most `tokens` tokens' worth of
        characters, and (unless `empty` is None) not blank; `empty` ends the refusal of a blank one."""
        if not isinstance(value, str):
            raise InvalidInputError(f"The {what} must be text.")
        if len(value) > self.limits.max_chars(tokens):  # refuse megabytes before tokenizing them
            raise TooLargeError(f"The {what} has {len(value):,} characters; this server takes at most {tokens} tokens.")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInputError(f"The {what} holds a character that is not valid Unicode (a lone surrogate such "
                                    "as \\ud800); send UTF-8 text.") from None
        if empty is not None and not value.strip():
            raise InvalidInputError(f"The {what} is empty; {empty}.")
        return value

    def _prompt_ids(self, prompt: str, limit: int | None = None, what: str = "prompt") -> list[int]:
        limit = min(limit or self.limits.max_prompt_tokens, self.model.cfg.n_ctx)
        self._text(prompt, what, limit)
        ids = self.model.encode(prompt)
        if len(ids) > limit:
            raise TooLargeError(f"The {what} is {len(ids)} tokens long; this server takes at most {limit} here.")
        return ids

    def _fits(self, batch: int, tokens: int, what: str, **options) -> None:
        """Refuse (413) a forward whose memory estimate (interp.memory) exceeds what this machine has free."""
        from interp import memory

        need = memory.forward_bytes(self.model, batch, tokens, **options)
        try:
            memory.check(need, what, "ask for less (a shorter prompt, fewer samples)", self.model.device)
        except InvalidInputError as exc:
            raise TooLargeError(str(exc)) from None

    def _target(self, target: str | None, what: str = "target") -> str:
        """An answer (stripped; "" when none): at most max_target_tokens tokens."""
        limit = self.limits.max_target_tokens
        target = self._text("" if target is None else target, what, limit, empty=None).strip()
        if target and len(self.model.encode(" " + target)) > limit:
            raise TooLargeError(f"The {what} is longer than {limit} tokens, this server's limit for an answer.")
        return target

    def _with_subject(self, prompt: str, subject: str, tokens: int) -> str:
        """prompt with {} replaced by subject, refused by its size before the replacement is made."""
        prompt = self._text(prompt, "prompt", tokens)
        subject = self._text(subject, "subject", tokens, "give the words of the prompt to corrupt")
        size = len(prompt) + prompt.count("{}") * (len(subject) - 2)
        if size > self.limits.max_chars(tokens):
            raise TooLargeError(f"With the subject in place of {{}} the prompt would have {size:,} characters; this "
                                f"server takes at most {tokens} tokens.")
        return prompt.replace("{}", subject)

    def _count(self, value: int, name: str, low: int, high: int) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise InvalidInputError(f"{name} must be a whole number from {low} to {high}, got {value!r}.")
        return value

    def _layer(self, layer: int) -> int:
        n = self.model.cfg.n_layers
        if not isinstance(layer, int) or isinstance(layer, bool) or not 0 <= layer < n:
            raise InvalidInputError(f"Layer {layer!r} does not exist; {self.model.cfg.name} has layers 0-{n - 1}.")
        return layer

    # -- predict and look inside ------------------------------------------------------------------------
    def predict(self, prompt: str, top_k: int = 10, new_tokens: int = 0) -> dict:
        """Top-k next tokens, the logit lens of the top answer, and optionally a greedy continuation."""
        from interp.analysis.inspect.run import inspect_prompt
        from interp.jsonio import to_jsonable

        n = len(self._prompt_ids(prompt))
        self._fits(1, n, f"A {n}-token prompt", keep_layers=True)  # the logit lens caches every layer
        top_k = self._count(top_k, "top_k", 1, self.limits.max_top_k)
        new_tokens = self._count(new_tokens, "new_tokens", 0, self.limits.max_new_tokens)
        with self.using_model():
            result = inspect_prompt(self.model, prompt, top_k=top_k)
            continuation = self._generate(prompt, new_tokens) if new_tokens else None
        out = result.to_json()
        out.pop("config", None)
        out["answer"] = result.top_next[0]["token"]
        out["continuation"] = continuation
        return to_jsonable(out)

    def _generate(self, text: str, new_tokens: int) -> str:
        from interp.model.generate import generate  # the continuation only, greedy

        room = self.model.cfg.n_ctx - len(self.model.encode(text))
        return generate(self.model, text, max_new_tokens=max(0, min(new_tokens, room))) if room > 0 else ""

    def attention(self, prompt: str, layer: int) -> dict:
        """Every head's attention pattern at `layer` over the prompt, in the report viewer's shape:
        {"tokens": [...], "heads": [{"layer", "head", "pattern": [row q: weights of keys 0..q]}]}."""
        from interp.model import hook_names

        ids = self._prompt_ids(prompt)
        self._fits(1, len(ids), f"A {len(ids)}-token prompt")
        layer = self._layer(layer)
        name = hook_names.pattern(layer)
        with self.using_model(), torch.no_grad():
            _, cache = self.model.run_with_cache(torch.tensor([ids], device=self.model.device), names_filter=[name])
            pattern = cache[name][0].float().cpu()  # (head, q, k)
            tokens = [self.model.to_string([i]) for i in ids]
        rounded = ((pattern * 1000).round() / 1000).tolist()
        heads = [{"layer": layer, "head": h, "pattern": [row[: q + 1] for q, row in enumerate(rounded[h])]}
                 for h in range(len(rounded))]
        return {"tokens": tokens, "layer": layer, "heads": heads}

    # -- causal tracing ---------------------------------------------------------------------------------
    def trace(self, prompt: str, subject: str, target: str | None = None, samples: int = 10,
              kinds: Sequence[str] = ("resid", "mlp", "attn")) -> dict:
        """Causal trace of (prompt, subject) at every token: the report's heatmaps (PNG) and the scores."""
        from interp.analysis.facts.params import TraceParams
        from interp.analysis.facts.run import run_trace
        from interp.jsonio import to_jsonable

        samples = self._count(samples, "samples", 1, self.limits.max_trace_samples)
        if isinstance(kinds, str) or len(kinds) > 3:
            raise InvalidInputError("kinds must be some of resid, mlp and attn, each once.")
        tokens = min(self.limits.max_trace_tokens, self.model.cfg.n_ctx)
        text = self._with_subject(prompt, subject, tokens)  # sizes checked before the {} is expanded
        target = self._target(target)
        params = TraceParams(prompt=prompt, subject=subject, target=target or None, samples=samples,
                             kinds=tuple(kinds))  # checks samples and kinds
        ids = self._prompt_ids(text, tokens)
        self._fits(max(samples, params.batch_size), len(ids), f"A trace of {samples} samples on {len(ids)} tokens",
                   logits=False)  # each forward runs a batch of corrupted and restored rows
        rows = len(params.kinds) * self.model.cfg.n_layers * len(ids) * samples
        if rows > self.limits.max_trace_rows:
            raise TooLargeError(f"This trace would run up to {rows:,} restored forward rows, over this server's "
                                f"limit of {self.limits.max_trace_rows:,}; use fewer samples, kinds or tokens.")
        with self.using_model("trace"):
            result = run_trace(self.model, params, progress=self.progress.wrap)
            self.progress.set_stage("drawing heatmaps")
            figures = _figures(result)
        tr = result.single
        out = result.to_json()
        out["figures"] = figures
        out["positions"] = tr.positions
        out["subject_range"] = [tr.case.subject_start, tr.case.subject_end]
        out["scores"] = {k: tr.scores[k] for k in params.kinds}
        return to_jsonable(out)

    # -- edits ------------------------------------------------------------------------------------------
    def list_edits(self) -> list[dict]:
        return [a.to_json() for a in self.edits]

    def apply_edit(self, prompt: str, subject: str, target: str, method: str = "rome",
                   layers: Sequence[int] | None = None,
                   paraphrase: str = "", neighbour: str = "", new_tokens: int = 12) -> dict:
        """Compute a ROME or MEMIT edit on the model as it is now, apply it, and probe the prompt, a
        paraphrase and a neighbour before and after (top answer, p(new target), greedy continuation)."""
        from interp.analysis.rome import EditRequest

        if method not in ("rome", "memit"):
            raise InvalidInputError(f"Unknown edit method {method!r}; use rome or memit.")
        self._with_subject(prompt, subject, self.limits.max_prompt_tokens)  # sizes first: EditRequest expands {}
        request = EditRequest(prompt, subject, self._target(target))  # one-sentence EditErrors
        probes = [("prompt", request.text)]
        self._prompt_ids(request.text)
        for kind, text in (("paraphrase", paraphrase or ""), ("neighbour", neighbour or "")):
            if self._text(text, kind, self.limits.max_prompt_tokens, empty=None).strip():
                self._prompt_ids(text, what=kind)
                probes.append((kind, text))
        new_tokens = self._count(new_tokens, "new_tokens", 0, self.limits.max_new_tokens)
        if len(layers or []) > self.model.cfg.n_layers:
            raise InvalidInputError(f"{len(layers)} layers given; {self.model.cfg.name} has {self.model.cfg.n_layers}.")
        layers = [self._layer(l) for l in (layers or [])]
        if method == "rome" and len(layers) > 1:
            raise InvalidInputError("ROME edits one layer; give one layer (or choose MEMIT for several).")
        if len(self.edits) >= self.limits.max_edits:
            raise TooLargeError(f"{len(self.edits)} edits are active, this server's limit; undo one first.")
        with self.using_model("edit"):
            edit = self._compute_edit(request, method, layers)
            self.progress.set_stage("probing before and after")
            before = self._probe(probes, request.target_new, new_tokens)
            edit.apply(self.model, check=False)
            try:
                after = self._probe(probes, request.target_new, new_tokens, watch=[b["top_id"] for b in before])
            except BaseException:
                edit.undo(self.model)
                raise
            active = self._add(edit, "computed")
        rows = [{"kind": kind, "text": text, "before": b, "after": a}
                for (kind, text), b, a in zip(probes, before, after, strict=True)]
        return {"edit": active.to_json(), "target": request.target_new, "probes": rows}

    def apply_facts(self, data: bytes, method: str = "memit", batch_size: int = 100, limit: int | None = None) -> dict:
        """Write every request of an uploaded fact file into the model as one edit (`interp.serve.batch_edit`)."""
        from interp.serve.batch_edit import apply_facts

        return apply_facts(self, data, method, batch_size, limit)

    def _compute_edit(self, request, method: str, layers: list[int]):
        from interp.analysis.rome import MEMITParams, ROMEParams, StatsParams, check_target, memit_edit, rome_edit

        stats = self.stats or StatsParams()
        self.progress.set_stage("checking the target")
        check_target(self.model, request)
        self.progress.set_stage("computing the edit")
        if method == "rome":
            params = ROMEParams(layer=layers[0] if layers else None, stats=stats)
            return rome_edit(self.model, request, params, apply=False, progress=self.progress.wrap)
        params = MEMITParams(layers=tuple(sorted(set(layers))) or None).with_rome(stats=stats)
        return memit_edit(self.model, [request], params, apply=False, progress=self.progress.wrap)

    @torch.no_grad()
    def _probe(self, probes, target: str, new_tokens: int, watch: Sequence[int] | None = None) -> list[dict]:
        """Per prompt: the top next token and its probability, p(target) (exp of the mean token NLL, as
        the CLI and the evaluation compute it), p of the `watch` token (the answer before the edit), and
        a greedy continuation."""
        from interp.analysis.rome.evaluate import target_nll

        texts = [t for _, t in probes]
        p_new = [math.exp(-float(x)) for x in target_nll(self.model, texts, [target] * len(texts))]
        out = []
        for i, text in enumerate(texts):
            probs = self.model(self.model.to_batch(text)[0])[0, -1].float().softmax(-1)  # (vocab,)
            top = int(probs.argmax())
            watched = top if watch is None else watch[i]
            out.append({"top_id": top, "top": self.model.to_string([top]), "p_top": float(probs[top]),
                        "answer": self.model.to_string([watched]), "p_answer": float(probs[watched]),
                        "p_target": p_new[i], "continuation": self._generate(text, new_tokens) if new_tokens else ""})
        return out

    def _add(self, edit, source: str) -> ActiveEdit:
        active = ActiveEdit(self._next_id, edit, source)
        self._next_id += 1
        self.edits.append(active)
        return active

    def _find(self, edit_id: int) -> ActiveEdit:
        for a in self.edits:
            if a.id == edit_id:
                return a
        raise NotFoundError(f"There is no active edit number {edit_id}.")

    def undo_edit(self, edit_id: int) -> dict:
        """Undo exactly (Edit.undo restores the saved matrices); refuses while a later edit on the same
        layers is still applied."""
        active = self._find(edit_id)
        with self.using_model():
            active.edit.undo(self.model)
            self.edits.remove(active)
        return active.to_json()

    def edit_file(self, edit_id: int) -> tuple[bytes, str]:
        """The edit as an edit file (Edit.save's format) and a file name for it (`interp.serve.edit_files`)."""
        from interp.serve.edit_files import edit_file

        return edit_file(self, self._find(edit_id))

    def load_edit_file(self, data: bytes) -> dict:
        """Check an uploaded edit file and apply it (`interp.serve.edit_files`)."""
        from interp.serve.edit_files import load_edit_file

        return load_edit_file(self, data)


def _figures(result) -> dict[str, str]:
    """The report's trace heatmaps (TraceResult.save_figures) as PNG data URLs, by kind."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = result.save_figures(Path(tmp))
        return {p.stem.removeprefix("trace_"):
                "data:image/png;base64," + base64.b64encode(p.read_bytes()).decode("ascii")
                for p in paths if p.stem.startswith("trace_")}
