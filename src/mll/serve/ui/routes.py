"""The web UI of ``mll serve``: server-rendered pages over the same :class:`HubService` methods as
the API (nothing here selects, ranks or labels), login by API token or password, CSRF checks.

Pages read with a login session (or anonymously with ``--public``, as the API); every form post
carries the session's CSRF token, compared in constant time, and is refused without it. Before a
login the login form's token is a random value in a SameSite=Strict cookie (double submit).
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from ... import errors
from ..accounts import Session, same_token

logger = logging.getLogger(__name__)

HERE = Path(__file__).parent
SESSION_COOKIE = "mll_session"
LOGIN_CSRF_COOKIE = "mll_login_csrf"


def session_of(request: Request) -> Session | None:
    """The request's login session (looked up once per request), or None."""
    if "ui_session" not in request.scope:
        service = request.app.state.service
        request.scope["ui_session"] = service.accounts.get(request.cookies.get(SESSION_COOKIE))
    return request.scope["ui_session"]


class _Refused(Exception):
    """A page the visitor may not see: to the login page when not logged in, else 403."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class _PageError(Exception):
    """An mll error met while making a page: shown as an error page with the API's status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def register(app: FastAPI) -> None:
    """Add the web pages, their static files and their error pages to ``app``."""
    from fastapi.templating import Jinja2Templates

    from ..app import status_of

    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["pct"] = lambda v: "-" if v is None else f"{100 * v:.0f}%"
    service = app.state.service
    settings = app.state.settings
    app.mount("/ui-static", StaticFiles(directory=HERE / "static"), name="ui-static")
    router = APIRouter(include_in_schema=False)

    def viewer(request: Request, role: str = "reader") -> Session | None:
        session = session_of(request)
        if session is None:
            if role == "reader" and settings.public:
                return None
            raise _Refused(401, "log in to see this page")
        if not session.allows(role):
            raise _Refused(403, f"a {session.role} login cannot do this; it needs the {role} "
                                "role or above")
        return session

    def csrf_value(request: Request) -> tuple[str, str | None]:
        """The CSRF token the page's forms carry, and a new login cookie value to set, if any."""
        session = session_of(request)
        if session is not None:
            return session.csrf, None
        known = request.cookies.get(LOGIN_CSRF_COOKIE)
        if known and len(known) < 100:
            return known, None
        fresh = secrets.token_urlsafe(32)
        return fresh, fresh

    def check_csrf(request: Request, given: str | None) -> None:
        session = session_of(request)
        expected = session.csrf if session else request.cookies.get(LOGIN_CSRF_COOKIE)
        if not expected or not same_token(expected, given):
            raise _Refused(403, "this form was not sent from this site's page, or the page is "
                                "too old; reload it and send the form again")

    def spend(request: Request, action: str) -> str | None:
        """Spend one request of the caller's ``action`` rate limit (the API's buckets; a token
        login shares its token's); the refusal's message when it is spent."""
        from ..ratelimit import limit

        try:
            limit(action)(request)
        except HTTPException as exc:
            return str(exc.detail)
        return None

    def page(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        token, fresh = csrf_value(request)
        response = templates.TemplateResponse(
            request, name, {"session": session_of(request), "public": settings.public,
                            "csrf": token, **ctx}, status_code=status)
        if fresh:
            response.set_cookie(LOGIN_CSRF_COOKIE, fresh, httponly=True, samesite="strict",
                                secure=_secure(request), path="/")
        return response

    @app.exception_handler(_Refused)
    async def _refused(request: Request, exc: _Refused) -> Response:
        if exc.status == 401:
            return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
        return page(request, "error.html", exc.status, message=exc.message)

    def guarded(fn, *args, **kwargs):
        """``fn``'s answer, or mll's error as an error page with the API's status."""
        try:
            return fn(*args, **kwargs)
        except errors.MLLError as exc:
            raise _PageError(status_of(exc), " ".join(str(exc).splitlines())) from None

    @app.exception_handler(_PageError)
    async def _page_error(request: Request, exc: _PageError) -> Response:
        return page(request, "error.html", exc.status, message=exc.message)

    # -- login ----------------------------------------------------------------------------------
    @router.get("/login")
    def login_page(request: Request, next: str = "/") -> HTMLResponse:
        return page(request, "login.html", next=_local(next), error=None)

    @router.post("/login")
    def login(request: Request, csrf: Annotated[str, Form(max_length=200)] = "",
              token: Annotated[str, Form(max_length=200)] = "",
              name: Annotated[str, Form(max_length=200)] = "",
              password: Annotated[str, Form(max_length=2000)] = "",
              next: Annotated[str, Form(max_length=2000)] = "/") -> Response:
        check_csrf(request, csrf)
        if token.strip():
            info = service.tokens.verify(token.strip())
            subject = None if info is None else ("token", info.id)
        else:
            user = service.accounts.check_password(name.strip(), password)
            subject = None if user is None else ("user", user.name)
        if subject is None:
            logger.info("failed web login")
            return page(request, "login.html", 401, next=_local(next),
                        error="wrong token, or wrong user name or password")
        session_id = service.accounts.start(*subject)
        response = RedirectResponse(_local(next), status_code=303)
        response.set_cookie(SESSION_COOKIE, session_id, httponly=True, samesite="lax",
                            secure=_secure(request), path="/",
                            max_age=int(service.accounts.session_hours * 3600))
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
        return response

    @router.post("/logout")
    def logout(request: Request, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
        check_csrf(request, csrf)
        service.accounts.end(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # -- reading --------------------------------------------------------------------------------
    @router.get("/")
    def home(request: Request) -> HTMLResponse:
        viewer(request)
        return page(request, "home.html", figures=guarded(service.figures))

    @router.get("/search")
    def search(request: Request, q: str = "") -> HTMLResponse:
        viewer(request)
        q = q.strip()[:200]
        if not q:
            return RedirectResponse("/", status_code=303)
        try:
            nodes = service.search_nodes(q, 10)["nodes"]
        except errors.NotBuiltError:
            nodes = []
        serving = guarded(service.models, None, None, nodes[0]["wnid"]) if nodes \
            else None
        return page(request, "search.html", q=q, nodes=nodes, serving=serving,
                    named=guarded(service.find_models, q))

    @router.get("/models/{ref}")
    def model_page(request: Request, ref: str) -> HTMLResponse:
        viewer(request)
        model = guarded(service.model, ref)
        return page(request, "model.html", m=model, chart=_bars(model.get("nodes") or [], 30))

    @router.get("/nodes/{ref}")
    def node_page(request: Request, ref: str) -> HTMLResponse:
        viewer(request)
        return page(request, "node.html", n=guarded(service.node, ref))

    # -- a new task -----------------------------------------------------------------------------
    @router.get("/task")
    def task_page(request: Request, classes: str = "", domain: str = "") -> HTMLResponse:
        viewer(request)
        names = [c.strip() for c in classes[:100_000].replace(",", "\n").splitlines()
                 if c.strip()]
        plan, error = None, None
        if names:
            try:
                plan = service.select(names, domain[:500])
            except errors.MLLError as exc:
                error = " ".join(str(exc).splitlines())
        return page(request, "task.html", 400 if error else 200, classes="\n".join(names),
                    domain=domain[:500], plan=plan, result=None, error=error)

    @router.post("/task", max_body_size=settings.max_solve_bytes)
    def task_solve(request: Request, csrf: Annotated[str, Form(max_length=200)] = "",
                   classes: Annotated[str, Form(max_length=100_000)] = "",
                   files: Annotated[list[UploadFile], File()] = (),
                   domain: Annotated[str, Form(max_length=500)] = "") -> HTMLResponse:
        check_csrf(request, csrf)
        viewer(request)
        sent = [(f.filename or "", f.file) for f in files if f.filename]
        refused = spend(request, "solve")
        if refused:
            return page(request, "task.html", 429, classes=classes, domain=domain, plan=None,
                        result=None, error=refused)
        try:
            result = service.solve(classes, domain, sent, max_bytes=settings.max_solve_bytes,
                                   keep=settings.keep_solves)
        except errors.MLLError as exc:
            return page(request, "task.html", status_of(exc), classes=classes, domain=domain,
                        plan=None, result=None, error=" ".join(str(exc).splitlines()))
        return page(request, "task.html", classes="\n".join(result["classes"]), domain=domain,
                    plan=result["selection"], result=result, error=None)

    # -- uploads --------------------------------------------------------------------------------
    @router.get("/upload")
    def upload_page(request: Request) -> HTMLResponse:
        viewer(request, "uploader")
        return page(request, "upload.html", error=None, form={})

    @router.post("/upload", max_body_size=settings.max_upload_bytes + settings.max_body_bytes)
    def upload(request: Request, csrf: Annotated[str, Form(max_length=200)] = "",
               weights: Annotated[UploadFile | None, File()] = None,
               classes: Annotated[str, Form(max_length=1_000_000)] = "",
               name: Annotated[str, Form(max_length=200)] = "",
               description: Annotated[str, Form(max_length=5000)] = "",
               kind: Annotated[str, Form(max_length=10)] = "",
               family: Annotated[str, Form(max_length=40)] = "",
               license: Annotated[str, Form(max_length=100)] = "",
               domain: Annotated[str, Form(max_length=500)] = "") -> Response:
        check_csrf(request, csrf)
        session = viewer(request, "uploader")
        form = {"classes": classes, "name": name, "description": description, "kind": kind,
                "family": family, "license": license, "domain": domain}
        refused = spend(request, "upload")
        if refused:
            return page(request, "upload.html", 429, form=form, error=refused)
        try:
            if weights is None or not weights.filename:
                raise errors.InvalidParameterError("choose the model's weights file")
            if kind not in ("", "expert", "vlm"):
                raise errors.InvalidParameterError(f"kind must be expert or vlm, got "
                                                   f"{kind[:20]!r}")
            job = service.upload(weights.file, weights.filename, classes.encode(),
                                 family=family or None, kind=kind or None,
                                 name=name.strip() or None, description=description,
                                 source=None, license=license or None, domain=domain,
                                 options={}, max_bytes=settings.max_upload_bytes,
                                 created_by=session.subject if session.kind == "token" else None)
        except errors.MLLError as exc:
            return page(request, "upload.html", status_of(exc), form=form,
                        error=" ".join(str(exc).splitlines()))
        return RedirectResponse(f"/jobs/{job['id']}", status_code=303)

    @router.get("/jobs/{job_id}")
    def job_page(request: Request, job_id: str) -> HTMLResponse:
        viewer(request)
        return page(request, "job.html", job=guarded(service.job, job_id[:64]))

    app.include_router(router)


def _local(target: str) -> str:
    """A redirect target kept on this site (an absolute or scheme-relative URL becomes /)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _bars(rows: list[dict], limit: int) -> dict[str, Any]:
    """Geometry of a horizontal bar chart of accuracy per node (drawn as inline SVG): one bar per
    row with its 95% interval as a whisker, best first as the service ranked them."""
    rows = rows[:limit]
    width, label, height = 300, 190, 18
    bars = []
    for i, r in enumerate(rows):
        acc = r.get("accuracy") or 0.0
        lo, hi = (r.get("interval") or (acc, acc))
        bars.append({"y": i * height, "w": round(acc * width, 1), "lo": round(lo * width, 1),
                     "hi": round(hi * width, 1), "row": r})
    return {"bars": bars, "width": width, "label": label, "bar": height - 4,
            "height": max(len(bars), 1) * height + 20, "total": width + label + 110}
