"""``mll serve`` (the hub over HTTP) and ``mll token`` (the API tokens it accepts)."""

from __future__ import annotations

from pathlib import Path

import click

from ._options import emit_json, hub_option, json_option
from .hub import db_option


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--public", is_flag=True,
              help="Let anyone read without a token (writes always need one).")
@hub_option
@db_option
def serve(host: str, port: int, public: bool, hub: Path, db: str | None) -> None:
    """Serve the hub's HTTP API (OpenAPI schema at /openapi.json, interactive docs at /docs)."""
    from ..errors import MissingDependencyError, NotBuiltError
    from ..serve import ServeSettings, create_app

    try:
        import uvicorn
    except ImportError:
        raise MissingDependencyError("mll serve needs uvicorn; install mll[serve]") from None
    app = create_app(hub, db, ServeSettings(public=public))
    try:  # load the labels now, so the first requests do not wait for them
        app.state.service.warm()
    except NotBuiltError as exc:
        click.echo(f"Warning: {exc}; model and token endpoints work, the others answer 503",
                   err=True)
    reads = "anyone may read" if public else "reads need a reader token ('mll token create')"
    click.echo(f"serving {app.state.service.hub.root} on http://{host}:{port} (API docs at "
               f"/docs); {reads}", err=True)
    uvicorn.run(app, host=host, port=port, log_level="info")


@click.group("token")
def token() -> None:
    """API tokens of 'mll serve': create (shown once), list, revoke."""


def _tokens(hub: Path, db: str | None):
    from ..hub import Hub

    return Hub.open(hub, db, create=False)


@token.command("create")
@click.option("--role", required=True, type=click.Choice(["reader", "uploader", "admin"]),
              help="Roles nest: reader < uploader < admin. Every route today needs reader; "
                   "uploader and admin are for the uploads and administration to come.")
@click.option("--name", default="", help="Who or what the token is for.")
@hub_option
@db_option
@json_option
def create(role: str, name: str, hub: Path, db: str | None, as_json: bool) -> None:
    """Create a token; it is printed once and only its hash is stored."""
    from ..serve.tokens import TokenStore

    with _tokens(hub, db) as h:
        info, secret = TokenStore(h.store).create(role, name)
    if as_json:
        emit_json(info.to_dict() | {"token": secret})
        return
    click.echo(secret)
    click.echo(f"{info.role} token {info.id}{f' ({info.name})' if info.name else ''}: shown "
               "once, keep it safe; revoke with 'mll token revoke " + info.id + "'", err=True)


@token.command("list")
@hub_option
@db_option
@json_option
def list_(hub: Path, db: str | None, as_json: bool) -> None:
    """Every token: id, role, name, when created and revoked (never the secret)."""
    from ..serve.tokens import TokenStore

    with _tokens(hub, db) as h:
        infos = TokenStore(h.store).list()
    if as_json:
        emit_json([i.to_dict() for i in infos])
        return
    click.echo(f"{'id':12}  {'role':8}  {'created':25}  {'revoked':25}  name")
    for i in infos:
        click.echo(f"{i.id:12}  {i.role:8}  {i.created_at:25}  {i.revoked_at or '-':25}  {i.name}")


@token.command("revoke")
@click.argument("token_id")
@hub_option
@db_option
@json_option
def revoke(token_id: str, hub: Path, db: str | None, as_json: bool) -> None:
    """Revoke a token by its id (or a prefix of 4 or more characters); it is refused at once."""
    from ..serve.tokens import TokenStore

    with _tokens(hub, db) as h:
        info = TokenStore(h.store).revoke(token_id)
    if as_json:
        emit_json(info.to_dict())
    else:
        click.echo(f"revoked {info.id}  {info.role}  {info.name}")


commands = [serve, token]
