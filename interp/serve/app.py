"""The FastAPI app of `interp serve`: the page, and the JSON API it calls (OpenAPI at /openapi.json).

| method | path | what |
|---|---|---|
| GET | / | the page (its script and style at /page.js, /page.css) |
| GET | /api/model | the model, its defaults and this server's limits |
| GET | /api/progress | what the model is doing now: task, stage, done / total |
| POST | /api/predict | top-k next tokens, logit lens of the top answer, greedy continuation |
| POST | /api/attention | every head's attention pattern at one layer (the report viewer's data) |
| POST | /api/trace | causal trace of (prompt, subject): the report's heatmaps and the scores |
| GET | /api/edits | the active edits, oldest first |
| POST | /api/edits | compute (ROME / MEMIT) and apply an edit; before/after probes |
| DELETE | /api/edits/{id} | undo that edit exactly |
| GET | /api/edits/{id}/file | the edit as an edit file (safetensors) |
| POST | /api/edits/file | load and apply an edit file (raw bytes, application/octet-stream) |
| POST | /api/edits/facts | write a fact file's requests as one edit (raw bytes; ?method=&batch_size=&limit=) |

Every error is JSON ``{"error": "<one sentence>"}`` with a 4xx status (a bug: 500 and the same shape,
the traceback only in the server's log). Before the framework sees a request, `interp.serve.guard` checks
its Host (loopback only, bound to loopback without a token), its token (``Authorization: Bearer <token>``,
constant time, on every path but the page's static files), its Origin (this server's own or none), its
Content-Type (``application/json`` on every state-changing request, ``application/octet-stream`` for
the two uploads) and the size of a JSON body. Every text field has a length bound here and a token bound in `Lab`.
"""

from __future__ import annotations

import logging
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from interp.errors import InterpError
from interp.serve.guard import SECURITY_HEADERS, Guard, error_body  # noqa: F401 - SECURITY_HEADERS re-exported
from interp.serve.lab import BusyError, Lab, NotFoundError, TooLargeError

log = logging.getLogger("interp.serve")

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
# Schema-level bounds (the OpenAPI schema says them; Lab checks the tighter, configurable ones in tokens).
TEXT_CHARS = 2**16  # 64 Ki characters: above any prompt `interp serve --max-tokens` allows (8192 tokens)


# -- request bodies -----------------------------------------------------------------------------------------
class PredictBody(BaseModel):
    prompt: str = Field(description="The text to continue.", max_length=TEXT_CHARS)
    top_k: int = Field(10, description="Next tokens to list.")
    new_tokens: int = Field(0, description="Greedy continuation length (0: none).")


class AttentionBody(BaseModel):
    prompt: str = Field(max_length=TEXT_CHARS)
    layer: int = Field(description="0-based layer; every head of it is returned.")


class TraceBody(BaseModel):
    prompt: str = Field(description="The prompt, with {} where the subject goes or the subject itself.",
                        max_length=TEXT_CHARS)
    subject: str = Field(description="The words whose embeddings are corrupted.", max_length=TEXT_CHARS)
    target: str | None = Field(None, description="The answer to trace (default: the model's own top answer).",
                               max_length=TEXT_CHARS)
    samples: int = Field(10, description="Noise samples.")
    kinds: list[Literal["resid", "mlp", "attn"]] = Field(["resid", "mlp", "attn"], description="States to restore.",
                                                         max_length=3)


class EditBody(BaseModel):
    prompt: str = Field(description='The prompt with "{}" where the subject goes.', max_length=TEXT_CHARS)
    subject: str = Field(max_length=TEXT_CHARS)
    target: str = Field(description="The new answer, without a leading space.", max_length=TEXT_CHARS)
    method: Literal["rome", "memit"] = "rome"
    layers: list[int] | None = Field(None, description="ROME: one layer; MEMIT: its layers (default: per model).",
                                     max_length=256)
    paraphrase: str = Field("", description="Another wording of the fact, probed before and after.",
                            max_length=TEXT_CHARS)
    neighbour: str = Field("", description="A prompt about another subject that should keep its answer.",
                           max_length=TEXT_CHARS)
    new_tokens: int = Field(12, description="Greedy continuation length of each probe.")


# -- errors as one sentence ---------------------------------------------------------------------------------
def _status(exc: InterpError) -> int:
    """409 busy, 404 no such edit, 413 too large, 400 any other user error (bad input, refused edit)."""
    for kind, status in ((BusyError, 409), (NotFoundError, 404), (TooLargeError, 413)):
        if isinstance(exc, kind):
            return status
    return 400


def _error(status: int, message: str) -> Response:
    return Response(error_body(message), status_code=status, media_type="application/json")


def _validation_sentence(exc: RequestValidationError) -> str:
    """Pydantic's first complaint as one sentence."""
    errors = exc.errors()
    if not errors:
        return "The request is malformed."
    e = errors[0]
    kind = e.get("type", "")
    where = ".".join(str(x) for x in e.get("loc", ()) if x not in ("body", "path", "query"))
    if kind == "json_invalid":
        return "The request body is not valid JSON."
    if not where:
        return "The request body must be a JSON object, sent with Content-Type: application/json."
    if kind == "missing":
        return f"The field '{where}' is required."
    msg = str(e.get("msg", "is invalid")).rstrip(".")
    return f"The field '{where}': {msg[0].lower() + msg[1:]}."


def create_app(lab: Lab, token: str | None = None, allowed_hosts: tuple[str, ...] | None = None) -> FastAPI:
    """The app over `lab`. token: required on every /api call when set. allowed_hosts: Host header names
    accepted (None: any; `interp serve` passes LOOPBACK_HOSTS when it binds to loopback without a token)."""
    app = FastAPI(title="interp lab", version="0.1.0", docs_url=None, redoc_url=None,
                  description="Probe a loaded model and edit its facts live. The page at / calls this API. "
                              "Errors are {\"error\": \"<one sentence>\"} with a 4xx status.")
    _add_errors(app)
    app.add_middleware(Guard, routes_of=lambda: app.router.routes, token=token, allowed_hosts=allowed_hosts,
                       max_json_bytes=lab.limits.max_json_bytes)
    _add_page(app)
    _add_api(app, lab, token)
    return app


def _add_errors(app: FastAPI) -> None:
    """Every error as one sentence in JSON (the guard's refusals come from `interp.serve.guard`)."""

    @app.exception_handler(InterpError)
    async def interp_error(request: Request, exc: InterpError):
        return _error(_status(exc), str(exc))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        return _error(422, _validation_sentence(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        path = request.scope["path"][:200]
        messages = {404: f"There is nothing at {path}.", 405: f"{request.method} is not allowed on {path}.",
                    400: "The request body could not be read: send JSON in UTF-8."}  # the framework's parse error
        detail = " ".join(str(exc.detail).split()).rstrip(".") or "The request was refused"
        return _error(exc.status_code, messages.get(exc.status_code, detail[0].upper() + detail[1:] + "."))

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception):
        log.exception("interp serve: %s %s failed", request.method, request.scope["path"][:200])
        return _error(500, f"The server failed on this request ({type(exc).__name__}); the details are in its log.")


def _add_page(app: FastAPI) -> None:
    """The lab page: its HTML, script and style (static; the data reaches it through the API only)."""
    from interp.serve import page

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(page.HTML)

    @app.get("/page.js", include_in_schema=False)
    def script() -> Response:
        return Response(page.script(), media_type="text/javascript; charset=utf-8")

    @app.get("/page.css", include_in_schema=False)
    def style() -> Response:
        return Response(page.style(), media_type="text/css; charset=utf-8")


def _add_api(app: FastAPI, lab: Lab, token: str | None) -> None:
    """The API over `lab`. Sync handlers run in worker threads, so /api/progress answers while a trace runs."""

    @app.get("/api/model", summary="The model, its default edit layers and this server's limits")
    def model_info() -> dict:
        return lab.info() | {"token_required": token is not None}

    @app.get("/api/progress", summary="What the model is doing now")
    def progress() -> dict:
        return lab.progress.snapshot()

    @app.post("/api/predict", summary="Top-k next tokens, the logit lens of the top answer, a continuation")
    def predict(body: PredictBody) -> dict:
        return lab.predict(body.prompt, body.top_k, body.new_tokens)

    @app.post("/api/attention", summary="Every head's attention pattern at one layer over the prompt")
    def attention(body: AttentionBody) -> dict:
        return lab.attention(body.prompt, body.layer)

    @app.post("/api/trace", summary="Causal trace of (prompt, subject): heatmaps and scores")
    def trace(body: TraceBody) -> dict:
        return lab.trace(body.prompt, body.subject, body.target, body.samples, body.kinds)

    @app.get("/api/edits", summary="The active edits, oldest first")
    def list_edits() -> list[dict]:
        return lab.list_edits()

    @app.post("/api/edits", summary="Compute and apply a ROME or MEMIT edit; before/after probes")
    def apply_edit(body: EditBody) -> dict:
        return lab.apply_edit(body.prompt, body.subject, body.target, body.method, body.layers, body.paraphrase,
                              body.neighbour, body.new_tokens)

    @app.delete("/api/edits/{edit_id}", summary="Undo an edit exactly (later edits on its layers first)")
    def undo_edit(edit_id: int) -> dict:
        return lab.undo_edit(edit_id)

    @app.get("/api/edits/{edit_id}/file", summary="The edit as an edit file (safetensors)",
             responses={200: {"content": {"application/octet-stream": {}}}})
    def edit_file(edit_id: int) -> Response:
        data, name = lab.edit_file(edit_id)
        return Response(data, media_type="application/octet-stream",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @app.post("/api/edits/file", summary="Load and apply an edit file (the raw bytes as the body)",
              openapi_extra={"requestBody": {"required": True, "content": {"application/octet-stream": {
                  "schema": {"type": "string", "format": "binary"}}}}})
    async def load_edit_file(request: Request) -> dict:
        data = await _read_limited(request, lab.limits.max_upload_bytes)
        return await run_in_threadpool(lab.load_edit_file, data)

    @app.post("/api/edits/facts", summary="Write every request of a fact file (the raw bytes as the body) as one edit",
              openapi_extra={"requestBody": {"required": True, "content": {"application/octet-stream": {
                  "schema": {"type": "string", "format": "binary"}}}}})
    async def apply_facts(request: Request, method: Literal["rome", "memit", "alphaedit", "ft", "ft-l"] = "memit",
                          batch_size: int = 100, limit: int | None = None) -> dict:
        data = await _read_limited(request, lab.limits.max_upload_bytes, "fact files")
        return await run_in_threadpool(lab.apply_facts, data, method, batch_size, limit)


async def _read_limited(request: Request, limit: int, what: str = "edit files") -> bytes:
    """The request body, refused in one sentence once it passes `limit` bytes (never read whole first)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLargeError(f"The file is {int(declared):,} bytes; this server takes {what} of at most "
                            f"{limit:,} bytes.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLargeError(f"The file is over {limit:,} bytes, this server's limit for {what}.")
        chunks.append(chunk)
    return b"".join(chunks)
