"""``conveyor users``: people and their personal access tokens on a running server, through its
GitLab-compatible API (``/users``, ``/users/:id/personal_access_tokens``,
``/personal_access_tokens/:id``); an administrator's token is needed."""

from __future__ import annotations

from typing import Annotated, Optional
from urllib.parse import quote

import typer

from conveyor.cli.automation import DEFAULT_URL, TokenOption, UrlOption, call, err

users_app = typer.Typer(help="Users and their personal access tokens (administrators).", no_args_is_help=True)
token_app = typer.Typer(help="Personal access tokens of a user.", no_args_is_help=True)
users_app.add_typer(token_app, name="token")
UserArg = Annotated[str, typer.Argument(help="User id or username.")]


def _user_id(url: str, token: str, user: str) -> int:
    if user.isdigit():
        return int(user)
    found = call(url, token, "GET", f"/users?username={quote(user)}", echo=False)
    if not found:
        err.print(f"[red]error:[/] no user {user!r}")
        raise typer.Exit(1)
    return int(found[0]["id"])


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Argument()],
    email: Annotated[str, typer.Option(help="E-mail address (unique).")],
    name: Annotated[Optional[str], typer.Option(help="Display name (default: the username).")] = None,
    admin: Annotated[bool, typer.Option(help="An administrator.")] = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = "",
) -> None:
    """Create a user (and its namespace)."""
    call(url, token, "POST", "/users", {"username": username, "email": email, "name": name or username, "admin": admin})


@users_app.command("list")
def users_list(
    search: Annotated[Optional[str], typer.Option(help="Part of a username or name.")] = None,
    blocked: Annotated[bool, typer.Option(help="Only blocked users.")] = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = "",
) -> None:
    query = "&".join(part for part in (f"search={quote(search)}" if search else "", "blocked=true" if blocked else "") if part)
    call(url, token, "GET", "/users" + (f"?{query}" if query else ""))


@users_app.command("block")
def users_block(user: UserArg, url: UrlOption = DEFAULT_URL, token: TokenOption = "") -> None:
    """Block a user: every token of theirs is refused (401) from now on."""
    call(url, token, "POST", f"/users/{_user_id(url, token, user)}/block")


@users_app.command("unblock")
def users_unblock(user: UserArg, url: UrlOption = DEFAULT_URL, token: TokenOption = "") -> None:
    call(url, token, "POST", f"/users/{_user_id(url, token, user)}/unblock")


@token_app.command("create")
def token_create(
    user: UserArg,
    name: Annotated[str, typer.Option(help="What the token is for.")],
    scope: Annotated[list[str], typer.Option("--scope", help="api, read_api, read_user, create_runner, ... (repeatable).")],
    expires_at: Annotated[Optional[str], typer.Option(help="Last day (YYYY-MM-DD) before it expires.")] = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = "",
) -> None:
    """Create a personal access token for a user; the token is printed this once."""
    body = {"name": name, "scopes": scope, **({"expires_at": expires_at} if expires_at else {})}
    call(url, token, "POST", f"/users/{_user_id(url, token, user)}/personal_access_tokens", body)


@token_app.command("revoke")
def token_revoke(token_id: Annotated[int, typer.Argument(help="Token id.")], url: UrlOption = DEFAULT_URL, token: TokenOption = "") -> None:
    call(url, token, "DELETE", f"/personal_access_tokens/{token_id}")


@token_app.command("list")
def token_list(user: UserArg, url: UrlOption = DEFAULT_URL, token: TokenOption = "") -> None:
    call(url, token, "GET", f"/personal_access_tokens?user_id={_user_id(url, token, user)}")
