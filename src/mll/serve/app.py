"""The HTTP API of ``mll serve``: FastAPI routes over :class:`~mll.serve.service.HubService`.

This layer routes, authenticates, limits request bodies (FastAPI's ``max_body_size``: a larger
body is answered 413, by its Content-Length or as it streams in) and turns mll's errors into HTTP status
codes; what each route answers is computed by the service from the Python API.
"""

import json
import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from .. import errors
from .._json import plain
from . import schemas
from .ratelimit import limit, limiters
from .service import HubService
from .settings import ServeSettings
from .tokens import TokenInfo

logger = logging.getLogger(__name__)

API_VERSION = "1"
#: Bounds of an image's ``size`` (pixels a side of a thumbnail).
MIN_THUMBNAIL, MAX_THUMBNAIL = 16, 1024

#: HTTP status of each kind of user error (the most specific class listed first wins).
#: An ambiguous name (AmbiguousNameError, also a StoreError) is the user's to fix: 400.
STATUS = [(errors.UnknownNameError, 404), (errors.LimitExceededError, 413),
          (errors.InvalidParameterError, 400), (errors.NotBuiltError, 503),
          (errors.MissingDependencyError, 503), (errors.ExternalServiceError, 502),
          (errors.StoreError, 500), (errors.MLLError, 400)]


def status_of(exc: errors.MLLError) -> int:
    """The HTTP status answering ``exc``."""
    return next(code for kind, code in STATUS if isinstance(exc, kind))


def _finite(value: Any) -> Any:
    """NaN and infinities as null: JSON has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


class JSON(JSONResponse):
    """JSON as the CLI's ``--json`` writes it (same conversions), compact, strictly valid."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(_finite(plain(content)),
                          ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8")


class SelectRequest(BaseModel):
    """A task: class names and words about its images, answered from the hub's labels."""

    classes: list[str] | str = Field(
        description="Class names, as a list or one comma-separated string.",
        examples=[["sandal", "sneaker", "ankle boot"]])
    domain: str = Field("", description="Words about the images, e.g. 'grayscale photo'.")
    method: str = Field("chco", description="Selection method (see 'mll select --help').")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="The method's parameters by name, e.g. {\"k\": 3} or {\"budget_ms\": 40}.")
    pinned: dict[str, str] = Field(
        default_factory=dict, description="Class name -> wnid, for classes whose node is known.")


_bearer = HTTPBearer(auto_error=False, description="An API token from 'mll token create'.")


def requires(role: str):
    """A route dependency: the request's token when its role includes ``role`` (401 without a
    valid token, 403 with a lower role); None for an anonymous read of a ``--public`` hub."""
    from .tokens import check_role

    check_role(role)

    def check(request: Request,
              creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
              ) -> TokenInfo | None:
        service: HubService = request.app.state.service
        settings: ServeSettings = request.app.state.settings
        if creds is None and request.method in ("GET", "HEAD"):
            # A web UI login also reads the API (a job's progress, a solve's report): on GET
            # only, so a cross-site form can never write with it.
            from .ui.routes import session_of

            session = session_of(request)
            if session is not None:
                if not session.allows(role):
                    raise HTTPException(403, f"a {session.role} login cannot do this; it needs "
                                             f"the {role} role or above")
                return None
        if creds is None:
            if role == "reader" and settings.public:
                return None
            raise HTTPException(401, "this request needs an API token: 'Authorization: "
                                     "Bearer mll_...' (see 'mll token create')",
                                headers={"WWW-Authenticate": "Bearer"})
        token = service.tokens.verify(creds.credentials)
        if token is None:
            raise HTTPException(401, "invalid or revoked API token",
                                headers={"WWW-Authenticate": "Bearer"})
        if not token.allows(role):
            raise HTTPException(403, f"a {token.role} token cannot do this; it needs the "
                                     f"{role} role or above")
        request.state.token = token  # whose rate limits the request spends (mll.serve.ratelimit)
        return token
    return check


STATIC = Path(__file__).parent / "static"


def _local_docs(app: FastAPI) -> None:
    """Interactive API docs at ``/docs`` from Swagger UI files shipped in the package.

    FastAPI's default page loads them from a CDN, which a hub on a closed network cannot reach.
    """
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url, title="mll API",
                                   swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
                                   swagger_css_url="/static/swagger-ui/swagger-ui.css",
                                   swagger_favicon_url="/static/swagger-ui/favicon.png",
                                   swagger_ui_parameters={"validatorUrl": None})


def create_app(hub: str | Path | None = None, db: str | None = None,
               settings: ServeSettings | None = None) -> FastAPI:
    """The ASGI application serving the hub at ``hub`` (database ``db``) with ``settings``.

    The hub is opened now (a missing hub is an error here, not on the first request); its labels
    load on first use. Run it with any ASGI server; ``mll serve`` uses uvicorn.
    """
    settings = settings or ServeSettings()
    service = HubService(hub, db, settings.concurrent_selects)
    logger.info("serving hub %s (database %s), %s reads", service.hub.root,
                service.hub.store.shown, "anonymous" if settings.public else "token-only")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """Size the route thread pool (selections waiting their turn each hold a thread)."""
        import anyio.to_thread

        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads
        yield

    app = FastAPI(title="mll", version=API_VERSION, default_response_class=JSON,
                  lifespan=lifespan, max_body_size=settings.max_body_bytes, docs_url=None,
                  redoc_url=None,
                  summary="A hub of image models labelled on a semantic graph: which models "
                          "serve a concept, how well, and which to combine for a new task.")
    app.state.service, app.state.settings = service, settings
    app.state.limiters = limiters(settings)
    _local_docs(app)

    @app.exception_handler(errors.MLLError)
    async def _mll_error(request: Request, exc: errors.MLLError) -> JSON:
        status = status_of(exc)
        return JSON({"detail": " ".join(str(exc).splitlines()), "error": type(exc).__name__},
                    status_code=status)

    reader = Annotated[TokenInfo | None, Depends(requires("reader"))]
    uploader = Annotated[TokenInfo, Depends(requires("uploader"))]
    admin = Annotated[TokenInfo, Depends(requires("admin"))]

    @app.get("/api/health", tags=["service"], response_model=schemas.Health)
    def health() -> dict:
        """Whether the server is up (no token needed)."""
        return {"status": "ok", "version": API_VERSION}

    @app.get("/api/whoami", tags=["service"], response_model=schemas.WhoAmI)
    def whoami(token: reader) -> dict:
        """The token this request was made with (name and role), or anonymous on a public hub."""
        if token is None:
            return {"anonymous": True, "public": settings.public, "role": None, "id": None,
                    "name": None}
        return {"anonymous": False, "public": settings.public} | token.to_dict()

    @app.get("/api/models", tags=["models"], response_model=schemas.ModelList)
    def models(token: reader,
               kind: Annotated[Literal["expert", "vlm"] | None, Query()] = None,
               family: Annotated[str | None, Query(max_length=100)] = None,
               concept: Annotated[str | None, Query(
                   min_length=1, max_length=200,
                   description="A node (wnid, synset name such as 'sandal.n.01', or word): the "
                               "models whose heads or labels cover it, best measured accuracy "
                               "there first.")] = None) -> dict:
        """The hub's models, oldest first; filtered by kind and family, or searched by concept."""
        return service.models(kind, family, concept)

    @app.get("/api/models/{ref}", tags=["models"], response_model=schemas.ModelDetail)
    def model(ref: str, token: reader) -> dict:
        """One model (id, id prefix or unique name): its record, classes with their nodes, label
        summary, and measured accuracy on every sample node it covers (best first) and per image
        style."""
        return service.model(ref)

    @app.post("/api/models", tags=["models"], status_code=202, response_model=schemas.Job,
              max_body_size=settings.max_upload_bytes + settings.max_body_bytes)
    def upload(token: uploader, _: Annotated[None, Depends(limit("upload"))],
               weights: Annotated[UploadFile, File(
                   description=".onnx, .safetensors, or a .zip of a model directory "
                               "(model.safetensors + config.json, or a Hugging Face CLIP "
                               "folder). Pickle-based files are refused.")],
               classes: Annotated[UploadFile, File(
                   description="The class list: one class per line, 'name<TAB>wnid' pins "
                               "its node (the format of 'mll hub add --classes').")],
               family: Annotated[str | None, Form(max_length=40)] = None,
               kind: Annotated[Literal["expert", "vlm"] | None, Form()] = None,
               name: Annotated[str | None, Form(max_length=200)] = None,
               description: Annotated[str, Form(max_length=5000)] = "",
               source: Annotated[str | None, Form(max_length=2000)] = None,
               license: Annotated[str | None, Form(max_length=100)] = None,
               domain: Annotated[str, Form(max_length=500)] = "",
               options: Annotated[str, Form(
                   max_length=10000, description="The family's options as a JSON object "
                                                 "(the -o KEY=VALUE of 'mll hub add').")] = "{}",
               ) -> JSON:
        """Upload a model: checked now, then added and labelled by a worker (202 with the job;
        follow it at /api/jobs/{id}). The model is selectable once its job is done."""
        from .. import limits

        try:
            opts = json.loads(options)
        except ValueError:
            opts = None
        if not isinstance(opts, dict):
            raise errors.InvalidParameterError("options must be a JSON object, e.g. "
                                               '{"input_size": 28}')
        raw = classes.file.read(limits.current().max_class_file_bytes + 1)
        limits.check("the class list size in bytes", len(raw), "max_class_file_bytes")
        job = service.upload(weights.file, weights.filename or "", raw, family=family,
                             kind=kind, name=name, description=description, source=source,
                             license=license, domain=domain, options=opts,
                             max_bytes=settings.max_upload_bytes, created_by=token.id)
        return JSON(job, status_code=202, headers={"Location": f"/api/jobs/{job['id']}"})

    @app.delete("/api/models/{ref}", tags=["models"], response_model=schemas.Removed)
    def remove(ref: str, token: admin) -> dict:
        """Remove a model (id, id prefix or unique name); selection stops using it at once."""
        return service.remove(ref)

    @app.get("/api/jobs", tags=["jobs"], response_model=schemas.JobList)
    def jobs(token: uploader,
             state: Annotated[Literal["queued", "running", "done", "failed", "cancelling",
                                      "cancelled"] | None, Query()] = None,
             limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict:
        """Background jobs, newest first."""
        return service.job_list(state, limit)

    @app.get("/api/jobs/{job_id}", tags=["jobs"], response_model=schemas.Job)
    def job(job_id: str, token: reader) -> dict:
        """One job: its state, phase, progress (sample images labelled), and the model it made."""
        return service.job(job_id)

    @app.delete("/api/jobs/{job_id}", tags=["jobs"], response_model=schemas.Job,
                responses={202: {"description": "Running: its worker stops at its next step "
                                                "(state cancelling)."},
                           409: {"description": "The job already ended."}})
    def cancel(job_id: str, token: uploader) -> JSON:
        """Cancel a job (its uploader or an admin): a queued job at once (200, cancelled); a
        running one stops at its worker's next step, which removes the model, label and files it
        made (202, cancelling; follow it at /api/jobs/{id})."""
        job = service.jobs.get(job_id)
        if job.created_by != token.id and not token.allows("admin"):
            raise HTTPException(403, "only the job's uploader or an admin can cancel it")
        doc = service.cancel_job(job_id) if job.state not in ("done", "failed") else job.to_dict()
        if doc["state"] in ("done", "failed"):  # ended before, or while we asked
            hint = "; remove its model instead (DELETE /api/models/{ref})" \
                if doc["state"] == "done" else ""
            raise HTTPException(409, f"job {job_id} already ended ({doc['state']}){hint}")
        return JSON(doc, status_code=202 if doc["state"] == "cancelling" else 200)

    @app.get("/api/nodes", tags=["graph"], response_model=schemas.NodeSearch)
    def nodes(token: reader, q: Annotated[str, Query(min_length=1, max_length=200)],
              limit: Annotated[int, Query(ge=1, le=200)] = 20) -> dict:
        """Graph nodes whose names match ``q``: the word's senses, then names starting with it,
        then names containing it."""
        return service.search_nodes(q, limit)

    @app.get("/api/nodes/{ref}", tags=["graph"], response_model=schemas.NodeDetail)
    def node(ref: str, token: reader) -> dict:
        """One node (wnid, synset name or word): parents, children, sample image counts, and the
        models that serve it with their measured accuracy there."""
        return service.node(ref)

    @app.get("/api/images/{image_id}", tags=["graph"], response_class=Response,
             responses={200: {"content": {"image/png": {}},
                              "description": "The image as PNG."}})
    def image(request: Request, token: reader,
              image_id: Annotated[str, PathParam(
                  pattern=r"^[0-9a-f]{64}$",
                  description="A sample image's id (sha256 of its pixels), as listed by "
                              "/api/nodes/{ref}.")],
              size: Annotated[int | None, Query(
                  ge=MIN_THUMBNAIL, le=MAX_THUMBNAIL,
                  description="Scale down to fit this many pixels a side (never up).")] = None,
              ) -> Response:
        """A sample image of the hub's corpus, as PNG. Its id is its content, so it never changes:
        answers are cached for a year (revalidated by ETag)."""
        etag = f'"{image_id}-{size or 0}"'
        scope = "public" if settings.public else "private"
        headers = {"ETag": etag, "Cache-Control": f"{scope}, max-age=31536000, immutable"}
        sent = {t.strip() for t in request.headers.get("if-none-match", "").split(",")}
        if etag in sent:
            service.sample_image(image_id)  # still one of the corpus's sample images
            return Response(status_code=304, headers=headers)
        data, media_type = service.image(image_id, size)
        return Response(data, media_type=media_type, headers=headers)

    @app.post("/api/select", tags=["ask"], response_model=schemas.Selection)
    def select(body: SelectRequest, token: reader) -> dict:
        """Choose models for a task from labels alone: the same JSON as 'mll select --json'."""
        return service.select(body.classes, body.domain, body.method, body.params,
                              body.pinned or None)

    @app.post("/api/solve", tags=["ask"], response_model=schemas.Solve,
              max_body_size=settings.max_solve_bytes)
    def solve(token: reader, _: Annotated[None, Depends(limit("solve"))],
              classes: Annotated[str, Form(
                  max_length=100_000, description="Class names, one per line.")],
              files: Annotated[list[UploadFile], File(
                  description="The images to classify (several files), or one .zip of them.")],
              domain: Annotated[str, Form(max_length=500)] = "") -> dict:
        """Solve a task: select models for the classes, predict the images, keep the HTML report
        and the saved predictor for download (their URLs are in the answer)."""
        return service.solve(classes, domain, [(f.filename or "", f.file) for f in files],
                             max_bytes=settings.max_solve_bytes, keep=settings.keep_solves)

    @app.get("/api/solves/{solve_id}/report", tags=["ask"], response_class=FileResponse,
             responses={200: {"content": {"text/html": {}}}})
    def solve_report(solve_id: str, token: reader) -> FileResponse:
        """A solved task's HTML report: plan, predicted accuracy, examples per class."""
        return FileResponse(service.solve_file(solve_id, "report"), media_type="text/html")

    @app.get("/api/solves/{solve_id}/predictor", tags=["ask"], response_class=FileResponse,
             responses={200: {"content": {"application/zip": {}}}})
    def solve_predictor(solve_id: str, token: reader) -> FileResponse:
        """A solved task's saved predictor: one zip with the models' weights, loadable without
        the hub (``mll.reuse.load_predictor``)."""
        return FileResponse(service.solve_file(solve_id, "predictor"),
                            media_type="application/zip",
                            filename=f"predictor-{solve_id[:8]}.zip")

    from .ui.routes import register as register_ui

    register_ui(app)
    return app
