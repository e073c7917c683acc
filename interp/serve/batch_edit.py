"""The lab's batch edit (`Lab.apply_facts`): an uploaded fact file written into the served model as one edit.

Every request of the file (CounterFact JSON or JSONL) is checked against the lab's limits as a single edit's
texts would be, then written by one editor of `interp.analysis.rome.session` (`EditSession`) through
`interp.analysis.rome.scale.write_requests`, the loop of `interp edit --facts`. The result is one active edit
of the lab, undone bit for bit like any other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from interp.errors import InterpError, InvalidInputError
from interp.serve.lab import _one_line
from interp.serve.limits import TooLargeError

if TYPE_CHECKING:
    from interp.serve.lab import Lab


def apply_facts(lab: Lab, data: bytes, method: str = "memit", batch_size: int = 100,
                limit: int | None = None) -> dict:
    """Write every request of an uploaded fact file (CounterFact JSON or JSONL) into the model with one editor,
    as one edit that undo restores bit for bit (`EditSession.as_applied_edit`). The held-out perplexity is
    measured before and after; a collapsed model (the rail of `interp edit --facts`) is restored and
    refused in one sentence, never kept. Update norms far outside the earlier steps' are flagged."""
    from interp.analysis.rome.session import EDITORS

    if method not in EDITORS:
        raise InvalidInputError(f"Unknown editor {method!r}; use one of {', '.join(EDITORS)}.")
    most = lab.limits.max_batch_facts
    batch_size = lab._count(batch_size, "batch_size", 1, 10_000)
    if limit is not None:
        limit = lab._count(limit, "limit", 1, most)
    if len(data) > lab.limits.max_upload_bytes:
        raise TooLargeError(f"The file is {len(data):,} bytes; this server takes fact files of at most "
                            f"{lab.limits.max_upload_bytes:,} bytes.")
    if not data.strip():
        raise InvalidInputError("The uploaded fact file is empty; choose a CounterFact-style JSON or JSONL file.")
    records, requests = _fact_requests(lab, data)
    records, requests = records[:limit], requests[:limit]
    if len(requests) > most:
        raise TooLargeError(f"The fact file holds {len(requests)} facts; this server writes at most {most} in "
                            "one batch (give a limit, or split the file).")
    if len(lab.edits) >= lab.limits.max_edits:
        raise TooLargeError(f"{len(lab.edits)} edits are active, this server's limit; undo one first.")
    with lab.using_model("batch edit"):
        return _write_batch(lab, records, requests, method, batch_size)


def _fact_requests(lab: Lab, data: bytes) -> tuple[list, list]:
    """The fact file's records and their EditRequests (at most one past the batch limit, so a larger file is
    refused by its count), each text within the limits of a single edit's."""
    from interp.analysis.facts.records import parse_facts
    from interp.analysis.rome import EditRequest

    try:
        records = parse_facts(data.decode("utf-8"), "The uploaded fact file")
    except UnicodeDecodeError:
        raise InvalidInputError("The uploaded fact file cannot be read as UTF-8 text.") from None
    except InterpError as exc:
        raise InvalidInputError(_one_line(exc)) from None
    except Exception:  # noqa: BLE001 - a malformed file is one sentence, not a traceback
        raise InvalidInputError("The uploaded file is not a CounterFact-style JSON or JSONL fact file.") from None
    if not records:
        raise InvalidInputError("The uploaded fact file holds no facts.")
    requests = []
    for i, f in enumerate(records[: lab.limits.max_batch_facts + 1], 1):
        try:
            r = EditRequest.from_fact(f)
        except InterpError as exc:
            raise InvalidInputError(f"Fact {i} of the uploaded file: {_one_line(exc)}") from None
        lab._with_subject(r.prompt, r.subject, lab.limits.max_prompt_tokens)
        lab._prompt_ids(r.text, what=f"prompt of fact {i}")
        lab._target(r.target_new, f"new answer of fact {i}")
        requests.append(r)
    return records[: len(requests)], requests


def _write_batch(lab: Lab, records: list, requests: list, method: str, batch_size: int) -> dict:
    from interp.analysis.rome import MEMITParams, ROMEParams, StatsParams
    from interp.analysis.rome.alphaedit import AlphaEditParams
    from interp.analysis.rome.scale import rewrite_success, write_requests
    from interp.analysis.rome.session import EditorParams, EditSession, heldout_ids, perplexity

    stats = lab.stats or StatsParams()
    rome = ROMEParams(stats=stats)  # the default editors: the original ROME, our MEMIT
    memit = MEMITParams().with_rome(stats=stats)
    editors = EditorParams(rome=rome, memit=memit, alphaedit=AlphaEditParams(memit=memit))
    lab.progress.set_stage("measuring the held-out perplexity")
    ids = heldout_ids(lab.model, None, lab.limits.heldout_tokens)
    base = perplexity(lab.model, ids)
    session = EditSession(lab.model, method, editors, progress=lab.progress.wrap)
    try:
        lab.progress.set_stage("reading the key statistics")
        session.prepare()
        n_steps = len(session.batches(requests, batch_size))
        ppls = write_requests(session, requests, batch_size, ids, base, n_steps, lab.progress.wrap,
                              "every edit of the batch was undone")
        lab.progress.set_stage("checking the rewrites")
        held = rewrite_success(lab.model, records)
        edit = session.as_applied_edit()
    except BaseException:
        session.restore()  # a failed, stopped or collapsed batch never leaves the model edited
        raise
    active = lab._add(edit, "computed")
    after = ppls[max(ppls)]
    return {"edit": active.to_json(), "steps": len(session.steps), "rewritten": sum(held), "facts": len(requests),
            "flagged_steps": [st.index for st in session.steps if st.flagged],
            "perplexity_before": base, "perplexity_after": after}
