"""The lab's edit files (`Lab.edit_file`, `Lab.load_edit_file`): an active edit downloaded in Edit.save's format,
and an uploaded one checked (size, the model and base weights it was made on, well-formed factors, texts within
the limits a request's would be) before it is applied as an active edit of the lab.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from interp.errors import EditError, InterpError
from interp.serve.lab import ActiveEdit, _one_line
from interp.serve.limits import TooLargeError

if TYPE_CHECKING:
    from interp.serve.lab import Lab


def edit_file(lab: Lab, active: ActiveEdit) -> tuple[bytes, str]:
    """The edit as an edit file (Edit.save's format) and a file name for it: model, subject and new target."""
    with tempfile.TemporaryDirectory() as tmp:
        data = active.edit.save(Path(tmp) / "edit.safetensors").read_bytes()
    r = active.edit.requests[0]
    words = f"{lab.model.cfg.name} {r.subject} {r.target_new}".replace("/", " ")
    stem = "-".join("".join(c for c in w if c.isalnum() or c in "._") for w in words.split())
    return data, f"{stem[:80] or 'edit'}-{active.id}.edit"


def load_edit_file(lab: Lab, data: bytes) -> dict:
    """Read an uploaded edit file, check it as Edit.load does (refusing another model's edit or other
    base weights) and that its factors are well formed, then apply it."""
    from interp.analysis.rome import Edit

    if len(data) > lab.limits.max_upload_bytes:
        raise TooLargeError(f"The file is {len(data):,} bytes; this server takes edit files of at most "
                            f"{lab.limits.max_upload_bytes:,} bytes.")
    if not data:
        raise EditError("The uploaded file is empty; choose an edit file saved by interp.")
    if len(lab.edits) >= lab.limits.max_edits:
        raise TooLargeError(f"{len(lab.edits)} edits are active, this server's limit; undo one first.")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "upload.edit"
        path.write_bytes(data)
        try:
            edit = Edit.load(path)
        except InterpError as exc:
            raise EditError("The uploaded file " + _one_line(exc).replace(str(path), "").strip()) from None
        except Exception:  # noqa: BLE001 - a malformed file is one sentence, not a traceback
            raise EditError("The uploaded file is not a valid interp edit file.") from None
    if not edit.deltas or not edit.requests:
        raise EditError("The uploaded file holds no edit.")
    _check_file_texts(lab, edit)
    with lab.using_model():
        edit.check(lab.model)
        edit.apply(lab.model, check=False)
        active = lab._add(edit, "file")
    return active.to_json()


def _check_file_texts(lab: Lab, edit) -> None:
    """The uploaded edit's texts reach the page: each within the limits a request's would be, valid Unicode."""
    prompt, answer = lab.limits.max_prompt_tokens, lab.limits.max_target_tokens
    for r in edit.requests:
        for what, text, tokens in (("prompt", r.prompt, prompt), ("subject", r.subject, prompt),
                                   ("target", r.target_new, answer), ("true target", r.target_true or "", answer)):
            lab._text(text, f"uploaded edit's {what}", tokens, empty=None)
    try:
        json.dumps(ActiveEdit(0, edit, "file").to_json(), ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError):  # UnicodeEncodeError is a ValueError
        raise EditError("The uploaded file holds text that is not valid Unicode or data that is not text."
                        ) from None
