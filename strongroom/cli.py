"""The `strongroom` command: run the platform and drive it from a shell."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click
import httpx

from strongroom.services.common import signing
from strongroom.services.common.auth import ROLE_ORDER
from strongroom.services.common.config import SERVICE_NAMES, default_data_dir
from strongroom.services.common.errors import StrongroomError

_CREDENTIALS_FILE = "credentials.json"
# The gateway keeps its sign-in records in a database of its own.
MIGRATING_SERVICES = (*SERVICE_NAMES, "gateway")
# Waits before each new attempt of a read or an upload that met a
# restarting service.
_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)
ROLE_CHOICES = list(ROLE_ORDER)


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "strongroom"


def _data_dir_option(function: Any) -> Any:
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="STRONGROOM_DATA_DIR",
        default=default_data_dir,
        show_default=True,
        help="Where Strongroom keeps its data.",
    )(function)


class Api:
    """A small REST client that turns problem responses into clean exits."""

    def __init__(self, url: str | None, token: str | None) -> None:
        saved = _load_credentials()
        self.url = (url or saved.get("url") or "http://127.0.0.1:8470").rstrip("/")
        self.token = token or saved.get("token", "")
        self.client = httpx.Client(
            base_url=self.url,
            timeout=600.0,
            headers={"authorization": f"Bearer {self.token}"},
        )

    def request(
        self, method: str, path: str, accept: set[int] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Send a request; an error status not in ``accept`` ends the command.

        A read that meets a restarting Strongroom (no connection, or 503) is
        tried again after a pause, a few times.
        """
        pauses = iter(_RETRY_DELAYS if method == "GET" else ())
        while True:
            try:
                response = self.client.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                if (pause := next(pauses, None)) is None:
                    raise Unreachable(
                        f"Strongroom at {self.url} cannot be reached."
                    ) from exc
                time.sleep(pause)
                continue
            if response.status_code != 503 or (pause := next(pauses, None)) is None:
                break
            time.sleep(pause)
        if response.is_error and response.status_code not in (accept or set()):
            raise click.ClickException(_problem_text(response))
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()


class Unreachable(click.ClickException):
    """No answer came: the connection failed or broke off."""


def _problem_text(response: httpx.Response) -> str:
    try:
        problem = response.json()
        return f"{problem['detail']} ({problem['code']}, HTTP {response.status_code})"
    except (ValueError, KeyError, TypeError):
        return f"The request failed with HTTP {response.status_code}."


def _load_credentials() -> dict[str, str]:
    path = config_dir() / _CREDENTIALS_FILE
    if not path.exists():
        return {}
    loaded: dict[str, str] = json.loads(path.read_text())
    return loaded


def _cluster_option(function: Any) -> Any:
    return click.option(
        "--cluster",
        "cluster_config",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="TOML file naming the cluster backends (Kafka, S3, OpenSearch, "
        "an OIDC provider, PostgreSQL) instead of the embedded ones.",
    )(function)


def _api_options(function: Any) -> Any:
    function = click.option(
        "--url",
        envvar="STRONGROOM_URL",
        default=None,
        help="Gateway URL (default: the one you logged in to).",
    )(function)
    return click.option(
        "--token",
        envvar="STRONGROOM_TOKEN",
        default=None,
        help="Access token (default: the one saved by login).",
    )(function)


@click.group()
@click.version_option(package_name="strongroom")
def main() -> None:
    """Strongroom: ingest, redact, label and export data, with an audit trail."""


@main.command()
@_data_dir_option
@click.option(
    "--service",
    "services",
    multiple=True,
    type=click.Choice(MIGRATING_SERVICES),
    help="Only this service's database (repeatable; default: every one).",
)
@_cluster_option
def migrate(
    data_dir: Path, services: tuple[str, ...], cluster_config: Path | None
) -> None:
    """Apply the pending schema migrations of each service's database.

    Services migrate their own database at start too; running this first
    (the Helm chart's pre-install and pre-upgrade hook) lets replicas start
    on a schema that is already in place.
    """
    from strongroom.launcher import cluster_environment, migrate_databases
    from strongroom.services.common.config import Settings

    if cluster_config is not None:
        os.environ.update(cluster_environment(cluster_config))
    settings = Settings(data_dir=data_dir)
    for name, applied in migrate_databases(settings, services or MIGRATING_SERVICES):
        click.echo(f"{name}: {applied} migration(s) applied")


@main.command()
@_data_dir_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8470, show_default=True, type=int)
@_cluster_option
def up(data_dir: Path, host: str, port: int, cluster_config: Path | None) -> None:
    """Start every service and the web gateway on this machine."""
    from strongroom.launcher import Launcher, cluster_environment

    cluster = None
    if cluster_config is not None:
        try:
            cluster = cluster_environment(cluster_config)
        except (ValueError, OSError) as exc:
            raise click.ClickException(str(exc)) from exc
    launcher = Launcher(
        data_dir.resolve(), host, port, say=lambda m: click.echo(m), cluster=cluster
    )
    sys.exit(launcher.run())


@main.command()
@click.option(
    "--url", envvar="STRONGROOM_URL", default="http://127.0.0.1:8470", show_default=True
)
@click.option("--username", prompt=True)
@click.option("--password", prompt=True, hide_input=True, envvar="STRONGROOM_PASSWORD")
@click.option(
    "--totp",
    "totp_code",
    default="",
    help="The code of your authenticator app (asked for when the account needs one).",
)
@click.option(
    "--new-password",
    envvar="STRONGROOM_NEW_PASSWORD",
    default=None,
    help="The new password, when a reset one must be changed (asked for if not given).",
)
def login(
    url: str, username: str, password: str, totp_code: str, new_password: str | None
) -> None:
    """Sign in and keep the access token for the other commands."""
    url = url.rstrip("/")
    form = {"grant_type": "password", "username": username, "password": password}
    response = _sign_in(url, {**form, "totp": totp_code} if totp_code else form)
    if _problem_code(response) == "totp_required":
        code = click.prompt("Code from your authenticator app")
        response = _sign_in(url, {**form, "totp": code})
    if response.is_error:
        raise click.ClickException(_problem_text(response))
    token = response.json()["access_token"]
    if _must_change_password(url, token):
        click.echo("The password was reset; choose a new one.")
        chosen = new_password or click.prompt(
            "New password", hide_input=True, confirmation_prompt=True
        )
        api = Api(url, token)
        token = api.json(
            "POST",
            "/api/v1/users/me/password",
            json={"current_password": password, "new_password": chosen},
        )["access_token"]
    _save_credentials(url, token)
    click.echo(f"Signed in to {url}.")


def _sign_in(url: str, form: dict[str, str]) -> httpx.Response:
    try:
        return httpx.post(f"{url}/oidc/token", timeout=30.0, data=form)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"Strongroom at {url} cannot be reached.") from exc


def _must_change_password(url: str, token: str) -> bool:
    """Whether the account signed in with a reset password not yet changed."""
    try:
        me = httpx.get(
            f"{url}/api/v1/me",
            headers={"authorization": f"Bearer {token}"},
            timeout=30.0,
        )
    except httpx.HTTPError as exc:
        raise click.ClickException(f"Strongroom at {url} cannot be reached.") from exc
    return _problem_code(me) == "password_change_required"


def _problem_code(response: httpx.Response) -> str:
    if not response.is_error:
        return ""
    try:
        return str(response.json().get("code", ""))
    except (ValueError, AttributeError):
        return ""


def _save_credentials(url: str, token: str) -> None:
    directory = config_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / _CREDENTIALS_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"url": url, "token": token}, handle)


@main.group()
def keys() -> None:
    """Make the keys Strongroom reads from outside its data directory."""


@keys.command("object-store")
@_data_dir_option
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def keys_object_store(data_dir: Path, path: Path) -> None:
    """Create a key (32 random bytes, mode 0600) to encrypt the objects with.

    Point STRONGROOM_OBJECT_STORE_KEY_FILE at it and keep a copy apart from
    the data directory's backups: without the key no object can be read.
    """
    from strongroom.services.common.object_encryption import (
        KEY_SETTING,
        create_key_file,
    )

    if path.resolve().is_relative_to(data_dir.resolve()):
        raise click.ClickException(
            f"{path} is inside the data directory; keep the key outside it."
        )
    try:
        create_key_file(path)
    except FileExistsError as exc:
        raise click.ClickException(f"{path} exists; it is not replaced.") from exc
    click.echo(f"Created {path}. Set {KEY_SETTING}={path.resolve()} to use it.")


@main.group()
def user() -> None:
    """Manage users of the built-in identity provider."""


@user.command("create")
@_api_options
@click.argument("username")
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    type=click.Choice(ROLE_CHOICES),
)
def user_create(
    url: str | None, token: str | None, username: str, roles: tuple[str, ...]
) -> None:
    """Create a user; the generated password is shown once."""
    created = Api(url, token).json(
        "POST", "/api/v1/users", json={"username": username, "roles": list(roles)}
    )
    click.echo(f"Created {created['username']} ({', '.join(created['roles'])}).")
    click.echo(f"Password (shown once): {created['password']}")


@user.command("list")
@_api_options
def user_list(url: str | None, token: str | None) -> None:
    """List the users, their roles, and whether each is disabled or has TOTP."""
    for found in Api(url, token).json("GET", "/api/v1/users"):
        flags = [
            flag
            for flag, is_set in (
                ("disabled", found.get("is_disabled")),
                ("totp", found.get("has_totp")),
            )
            if is_set
        ]
        suffix = f" [{', '.join(flags)}]" if flags else ""
        click.echo(f"{found['username']}\t{','.join(found['roles'])}{suffix}")


@user.command("disable")
@_api_options
@click.argument("username")
def user_disable(url: str | None, token: str | None, username: str) -> None:
    """Stop a user signing in; their tokens stop working at once."""
    Api(url, token).json("POST", f"/api/v1/users/{_segment(username)}/disable")
    click.echo(f"Disabled {username}.")


@user.command("enable")
@_api_options
@click.argument("username")
def user_enable(url: str | None, token: str | None, username: str) -> None:
    """Let a disabled user sign in again (and lift a lockout)."""
    Api(url, token).json("POST", f"/api/v1/users/{_segment(username)}/enable")
    click.echo(f"Enabled {username}.")


@user.command("reset-password")
@_api_options
@click.argument("username")
def user_reset_password(url: str | None, token: str | None, username: str) -> None:
    """Give a user a new generated password, shown once, to change at sign-in."""
    reset = Api(url, token).json(
        "POST", f"/api/v1/users/{_segment(username)}/password-reset"
    )
    click.echo(f"Reset the password of {username}; it must be changed at sign-in.")
    click.echo(f"Password (shown once): {reset['password']}")


@user.command("set-roles")
@_api_options
@click.argument("username")
@click.option(
    "--role", "roles", multiple=True, required=True, type=click.Choice(ROLE_CHOICES)
)
def user_set_roles(
    url: str | None, token: str | None, username: str, roles: tuple[str, ...]
) -> None:
    """Replace a user's roles; they apply from the user's next sign-in."""
    changed = Api(url, token).json(
        "PUT", f"/api/v1/users/{_segment(username)}/roles", json={"roles": list(roles)}
    )
    click.echo(f"{username} now has {', '.join(changed['roles'])}.")


@user.command("change-password")
@_api_options
@click.option(
    "--current-password", prompt=True, hide_input=True, envvar="STRONGROOM_PASSWORD"
)
@click.option(
    "--new-password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    envvar="STRONGROOM_NEW_PASSWORD",
)
def user_change_password(
    url: str | None, token: str | None, current_password: str, new_password: str
) -> None:
    """Change your own password; you stay signed in with a new token."""
    api = Api(url, token)
    changed = api.json(
        "POST",
        "/api/v1/users/me/password",
        json={"current_password": current_password, "new_password": new_password},
    )
    _save_credentials(api.url, changed["access_token"])
    click.echo("Changed your password.")


@user.command("enrol-totp")
@_api_options
def user_enrol_totp(url: str | None, token: str | None) -> None:
    """Start using a second factor: prints the secret and otpauth:// URI once."""
    enrolment = Api(url, token).json("POST", "/api/v1/users/me/totp")
    click.echo(f"Secret (shown once): {enrolment['secret']}")
    click.echo(f"URI: {enrolment['otpauth_uri']}")
    click.echo(
        "Add it to your authenticator app, then: strongroom user confirm-totp CODE"
    )


@user.command("confirm-totp")
@_api_options
@click.argument("code")
def user_confirm_totp(url: str | None, token: str | None, code: str) -> None:
    """Switch the second factor on with a first code from the app."""
    Api(url, token).json("POST", "/api/v1/users/me/totp/confirm", json={"code": code})
    click.echo("Sign-ins now need a code from your authenticator app.")


@user.command("disable-totp")
@_api_options
@click.argument("code")
def user_disable_totp(url: str | None, token: str | None, code: str) -> None:
    """Switch your second factor off, given a current code."""
    Api(url, token).json("POST", "/api/v1/users/me/totp/disable", json={"code": code})
    click.echo("Sign-ins no longer need a code.")


@user.command("remove-totp")
@_api_options
@click.argument("username")
def user_remove_totp(url: str | None, token: str | None, username: str) -> None:
    """Remove a user's second factor (a lost phone)."""
    Api(url, token).json("DELETE", f"/api/v1/users/{_segment(username)}/totp")
    click.echo(f"Removed the second factor of {username}.")


def _segment(value: str) -> str:
    return quote(value, safe="")


@main.group()
def project() -> None:
    """Create projects and manage their members."""


@project.command("create")
@_api_options
@click.argument("name")
@click.option("--label", "labels", multiple=True, help="A span label; repeat.")
@click.option("--class", "classes", multiple=True, help="A class; repeat.")
@click.option("--multi-label", is_flag=True, help="Allow several classes per task.")
@click.option("--box", "boxes", multiple=True, help="A box label; repeat.")
@click.option(
    "--label-config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A Label Studio labeling configuration (XML) to take the labels from.",
)
@click.option(
    "--guidelines",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A text file of guidelines shown to annotators.",
)
@click.option("--overlap", default=1, show_default=True, help="Answers per task.")
@click.option("--review", is_flag=True, help="Send answered tasks to a reviewer.")
@click.option(
    "--window",
    type=click.Choice(["document", "page", "paragraph", "fixed"]),
    default="document",
    show_default=True,
    help="How documents are cut into tasks.",
)
@click.option("--window-size", default=0, help="Characters per fixed window.")
@click.option(
    "--assigned",
    is_flag=True,
    help="Managers assign tasks instead of annotators pulling.",
)
def project_create(
    url: str | None,
    token: str | None,
    name: str,
    labels: tuple[str, ...],
    classes: tuple[str, ...],
    multi_label: bool,
    boxes: tuple[str, ...],
    label_config: Path | None,
    guidelines: Path | None,
    overlap: int,
    review: bool,
    window: str,
    window_size: int,
    assigned: bool,
) -> None:
    """Create a project: its labels, queue and review settings."""
    body: dict[str, Any] = {
        "name": name,
        "overlap": overlap,
        "review": review,
        "window": {"kind": window, "size": window_size},
        "assignment": "assigned" if assigned else "pull",
        "guidelines": guidelines.read_text(encoding="utf-8") if guidelines else "",
    }
    if label_config is not None:
        body["label_config"] = label_config.read_text(encoding="utf-8")
    else:
        body["schema"] = {
            "spans": list(labels),
            "classes": list(classes),
            "multi_label": multi_label,
            "boxes": list(boxes),
        }
    created = Api(url, token).json("POST", "/api/v1/projects", json=body)
    click.echo(created["id"])


@project.command("list")
@_api_options
def project_list(url: str | None, token: str | None) -> None:
    """List the projects you can see."""
    listed = Api(url, token).json("GET", "/api/v1/projects", params={"limit": 500})
    for item in listed["projects"]:
        click.echo(f"{item['id']}  {item['name']}")


@project.command("add-member")
@_api_options
@click.argument("project_id")
@click.argument("username")
@click.option(
    "--role", required=True, type=click.Choice(["manager", "annotator", "reviewer"])
)
def project_add_member(
    url: str | None, token: str | None, project_id: str, username: str, role: str
) -> None:
    """Add a user to a project with a role."""
    Api(url, token).json(
        "POST",
        f"/api/v1/projects/{project_id}/members",
        json={"username": username, "role": role},
    )
    click.echo(f"Added {username} as {role}.")


@main.command()
@_api_options
@click.option("--project", "project_id", required=True, help="Project id.")
@click.argument(
    "paths",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, path_type=Path),
)
def ingest(
    url: str | None, token: str | None, project_id: str, paths: tuple[Path, ...]
) -> None:
    """Upload files, or every file in folders, into a project.

    Each file becomes a document (archives, e-mails and CSV files also bring
    the documents found inside). Results go to stdout, one line per file; the
    progress bar goes to stderr and only when it is a terminal.
    """
    files = _files_in(paths)
    api = Api(url, token)
    results: list[str] = []
    failures = 0
    with click.progressbar(
        files,
        label="Ingesting",
        file=sys.stderr if sys.stderr.isatty() else io.StringIO(),
        item_show_func=lambda p: p.name if p else "",
    ) as bar:
        for path in bar:
            try:
                results.append(f"{path.name}: {_upload(api, project_id, path)}")
            except click.ClickException as exc:
                failures += 1
                results.append(f"{path.name}: refused: {exc.message}")
    for line in results:
        click.echo(line)
    if failures:
        raise click.ClickException(f"{failures} of {len(files)} file(s) were refused.")


def _files_in(paths: tuple[Path, ...]) -> list[Path]:
    """The files named, and those in named folders (recursively, sorted).

    Hidden files and folders (".DS_Store", ".git") are left out.
    """
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        else:
            files.append(path)
    return files


def _upload(api: Api, project_id: str, path: Path) -> str:
    """Upload one file, again after a pause while Strongroom answers 503.

    A connection that fails or breaks off (the gateway restarting) is tried
    again the same way. Sending the same bytes twice is safe: ingestion
    returns the document the first attempt created, if it got that far.
    """
    for delay in (*_RETRY_DELAYS, None):
        with path.open("rb") as handle:
            try:
                response = api.request(
                    "POST",
                    f"/api/v1/projects/{project_id}/documents",
                    files={"file": (path.name, handle, "application/octet-stream")},
                    accept={503} if delay is not None else set(),
                )
            except Unreachable:
                if delay is None:
                    raise
                time.sleep(delay)
                continue
        if response.status_code != 503 or delay is None:
            break
        time.sleep(delay)
    document = response.json()
    note = " (already ingested)" if document["is_duplicate"] else ""
    children = len(document.get("child_ids") or [])
    inside = f", {children} document(s) inside" if children else ""
    return (
        f"{document['id']} {document['media_type']}, "
        f"{len(document['pages'])} page(s){inside}{note}"
    )


@main.group()
def export() -> None:
    """Build dataset versions, download them and check them offline."""


@export.command("create")
@_api_options
@click.option("--project", "project_id", required=True, help="Project id.")
@click.option("--name", default="", help="Version name (default: v1, v2, ...).")
@click.option(
    "--format",
    "formats",
    multiple=True,
    default=("jsonl",),
    show_default=True,
    help="jsonl, label-studio, prodigy, spacy, conll, parquet, coco or csv; "
    "repeat for several.",
)
@click.option("--gold-only", is_flag=True, help="Only reviewed, adjudicated answers.")
@click.option("--reviewed-only", is_flag=True, help="Only tasks a reviewer decided.")
@click.option("--label", "labels", multiple=True, help="Keep only these labels.")
@click.option("--since", default=None, help="Answers given from (ISO 8601).")
@click.option("--until", default=None, help="Answers given before (ISO 8601).")
@click.option("--exclude-synthetic", is_flag=True)
@click.option(
    "--splits",
    default="0.8,0.1,0.1",
    show_default=True,
    help="Train, dev and test ratios.",
)
@click.option("--intended-use", default="", help="For the dataset card.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Download the finished version into OUT/NAME.",
)
@click.option("--no-wait", is_flag=True, help="Return once the build has started.")
def export_create(
    url: str | None,
    token: str | None,
    project_id: str,
    name: str,
    formats: tuple[str, ...],
    gold_only: bool,
    reviewed_only: bool,
    labels: tuple[str, ...],
    since: str | None,
    until: str | None,
    exclude_synthetic: bool,
    splits: str,
    intended_use: str,
    out_dir: Path | None,
    no_wait: bool,
) -> None:
    """Build a dataset version of a project, wait for it and download it."""
    try:
        train, dev, test = (float(part) for part in splits.split(","))
    except ValueError as exc:
        raise click.BadParameter("three numbers: train,dev,test") from exc
    api = Api(url, token)
    created = api.json(
        "POST",
        f"/api/v1/projects/{project_id}/exports",
        json={
            "name": name,
            "formats": list(formats),
            "filter": {
                "gold_only": gold_only,
                "reviewed_only": reviewed_only,
                "labels": list(labels),
                "since": since,
                "until": until,
                "exclude_synthetic": exclude_synthetic,
            },
            "splits": {"train": train, "dev": dev, "test": test},
            "intended_use": intended_use,
        },
    )
    if no_wait:
        click.echo(f"Export {created['name']} ({created['id']}) is building.")
        return
    export = _wait_for_export(api, created["id"])
    counts = ", ".join(f"{k} {v}" for k, v in sorted(export["split_counts"].items()))
    click.echo(
        f"Export {export['name']} ({export['id']}): "
        f"{export['annotation_count']} record(s) ({counts})"
    )
    if out_dir is not None:
        target = _download_export(api, export, out_dir / export["name"])
        click.echo(f"Written to {target}")


def _wait_for_export(api: Api, export_id: str) -> dict[str, Any]:
    shown = -1
    while True:
        export: dict[str, Any] = api.json("GET", f"/api/v1/exports/{export_id}")
        if export["state"] == "ready":
            return export
        if export["state"] == "failed":
            raise click.ClickException(
                f"Export {export['name']} failed ({export['error_code']})."
            )
        done, total = export["progress_done"], export["progress_total"]
        if total and done != shown and sys.stderr.isatty():
            click.echo(f"\r{done} of {total} task(s)", nl=False, err=True)
            shown = done
        time.sleep(0.5)


def _download_export(api: Api, export: dict[str, Any], target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for entry in export["files"]:
        path = (target / entry["name"]).resolve()
        if not path.is_relative_to(target.resolve()):
            raise click.ClickException(f"Refusing the file name {entry['name']!r}.")
        path.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with (
            api.client.stream(
                "GET", f"/api/v1/exports/{export['id']}/files/{entry['name']}"
            ) as response,
            path.open("wb") as handle,
        ):
            if response.is_error:
                response.read()
                raise click.ClickException(_problem_text(response))
            for chunk in response.iter_bytes():
                digest.update(chunk)
                handle.write(chunk)
        if digest.hexdigest() != entry["sha256"]:
            raise click.ClickException(f"{entry['name']} arrived damaged; try again.")
    return target


@export.command("download")
@_api_options
@click.argument("export_id")
@click.option(
    "--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path)
)
def export_download(
    url: str | None, token: str | None, export_id: str, out_dir: Path
) -> None:
    """Download every file of a ready version into OUT/NAME."""
    api = Api(url, token)
    export = api.json("GET", f"/api/v1/exports/{export_id}")
    if export["state"] != "ready":
        raise click.ClickException(f"Export {export['name']} is {export['state']}.")
    click.echo(f"Written to {_download_export(api, export, out_dir / export['name'])}")


@export.command("list")
@_api_options
@click.option("--project", "project_id", required=True, help="Project id.")
def export_list(url: str | None, token: str | None, project_id: str) -> None:
    """A project's versions, oldest first."""
    api = Api(url, token)
    listed = api.json("GET", f"/api/v1/projects/{project_id}/exports?limit=500")
    for e in listed["exports"]:
        click.echo(
            f"{e['id']} {e['name']} {e['state']} {','.join(e['formats'])} "
            f"{e['annotation_count']} record(s)"
        )


@export.command("key")
@_api_options
def export_key(url: str | None, token: str | None) -> None:
    """Print the public key that checks export manifests (PEM)."""
    click.echo(
        Api(url, token).request("GET", "/api/v1/exports/signing-key").text, nl=False
    )


@export.command("verify")
@click.argument(
    "directory", type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option(
    "--public-key",
    "public_key",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The platform's export key (strongroom export key), kept apart from "
    "the copy being checked.",
)
def export_verify(directory: Path, public_key: Path) -> None:
    """Check a copied version offline: the signature, then every file."""
    from strongroom.services.export.verify import verify_directory

    try:
        key = signing.load_public_key(public_key.read_bytes(), "export")
    except (ValueError, StrongroomError) as exc:
        raise click.ClickException(
            f"{public_key} is not an Ed25519 public key."
        ) from exc
    result = verify_directory(directory, key)
    if not result.ok:
        for problem in result.problems:
            click.echo(f"FAILED: {problem}", err=True)
        raise SystemExit(1)
    click.echo(
        f"Export {result.name} ({result.export_id}): signature good, "
        f"{result.files_checked} file(s) match the manifest."
    )


@main.command("import")
@_api_options
@click.option("--project", "project_id", required=True, help="Project id.")
@click.option(
    "--format",
    "import_format",
    required=True,
    type=click.Choice(["label-studio", "prodigy", "doccano"]),
    help="The tool the file was exported from.",
)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--no-wait", is_flag=True, help="Return once the import has started.")
def import_file(
    url: str | None,
    token: str | None,
    project_id: str,
    import_format: str,
    file: Path,
    no_wait: bool,
) -> None:
    """Bring another tool's export into a project: texts become documents
    (redacted like any upload), answers those of pseudonymous annotators."""
    api = Api(url, token)
    with file.open("rb") as handle:
        job = api.json(
            "POST",
            f"/api/v1/projects/{project_id}/imports",
            data={"format": import_format},
            files={"file": (file.name, handle)},
        )
    if no_wait:
        click.echo(f"Import {job['id']} started.")
        return
    while job["state"] == "running":
        time.sleep(0.5)
        job = api.json("GET", f"/api/v1/imports/{job['id']}")
    if job["state"] == "failed":
        raise click.ClickException(f"Import {job['id']} failed ({job['error_code']}).")
    click.echo(
        f"Import {job['id']}: {job['items']} item(s), {job['documents']} document(s), "
        f"{job['answers']} answer(s) from {job['annotators']} annotator(s), "
        f"{job['suggestions']} suggestion(s)."
    )
    for reason, count in sorted(job["left_out"].items()):
        click.echo(f"Left out: {count} {reason}")


@main.command("synthesize")
@_api_options
@click.option("--project", "project_id", required=True, help="Project id.")
@click.option(
    "--method",
    required=True,
    type=click.Choice(["entity_swap", "template", "tabular"]),
    help="How to make them (see docs/synthetic-examples.md).",
)
@click.option("--count", default=10, show_default=True, help="How many, 1 to 1,000.")
@click.option("--seed", default=0, show_default=True, help="Same seed, same examples.")
def synthesize(
    url: str | None,
    token: str | None,
    project_id: str,
    method: str,
    count: int,
    seed: int,
) -> None:
    """Make synthetic examples from a project's reviewed examples; each is
    marked synthetic everywhere and only ever in the train split."""
    made = Api(url, token).json(
        "POST",
        f"/api/v1/projects/{project_id}/synthetic",
        json={"method": method, "count": count, "seed": seed},
    )
    click.echo(
        f"Made {len(made['task_ids'])} synthetic example(s) from "
        f"{made['sources']} real one(s)."
    )


@main.group()
def audit() -> None:
    """Search and verify the audit trail."""


@audit.command("verify")
@_data_dir_option
@_cluster_option
@click.option(
    "--public-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The checkpoint signing key's public half (PEM), kept apart from the "
    "data; default: the one beside the signing key.",
)
def audit_verify(
    data_dir: Path, cluster_config: Path | None, public_key: Path | None
) -> None:
    """Check the audit chain, every signed checkpoint and every inclusion."""
    from strongroom.launcher import cluster_environment
    from strongroom.services.audit import store
    from strongroom.services.audit.main import chain_path, open_store, signing_key_path
    from strongroom.services.audit.servicer import verify_stored_trail
    from strongroom.services.common.config import Settings
    from strongroom.services.common.runtime import open_object_store

    if cluster_config is not None:
        os.environ.update(cluster_environment(cluster_config))
    settings = Settings(data_dir=data_dir)
    if not chain_path(settings).exists():
        raise click.ClickException(f"No audit trail under {data_dir}.")
    key_file = public_key or signing.public_key_path(signing_key_path(settings))
    if not key_file.exists():
        raise click.ClickException(f"No public key at {key_file}.")
    try:
        objects = open_object_store(settings)
    except StrongroomError as exc:
        raise click.ClickException(exc.message) from exc
    audit = open_store(settings)
    result = verify_stored_trail(audit, store.load_public_key(key_file), objects)
    audit.engine.dispose()
    if not result.is_intact:
        where = f"entry {result.damaged_position}" if result.damaged_position else ""
        click.echo(
            f"Audit chain DAMAGED{' at ' + where if where else ''} "
            f"({result.kind}): {result.problem}.",
            err=True,
        )
        sys.exit(1)
    click.echo(
        f"Audit chain intact: {result.event_count} events, "
        f"{result.checkpoint_count} signed checkpoints, head {result.head_hash}."
    )


@audit.command("search")
@_api_options
@click.argument("query", default="")
@click.option("--action", default="", help="An action, such as document.read.")
@click.option("--user", "username", default="", help="Only this person's actions.")
@click.option("--document", "document_id", default="", help="Events on a document.")
@click.option("--project", "project_id", default="")
@click.option(
    "--outcome", type=click.Choice(["", "success", "denied", "error"]), default=""
)
@click.option("--since", default="", help="ISO 8601 time with offset.")
@click.option("--until", default="", help="ISO 8601 time with offset.")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the events as JSON.")
def audit_search(
    url: str | None,
    token: str | None,
    query: str,
    limit: int,
    as_json: bool,
    **filters: str,
) -> None:
    """Search the audit trail (auditors and admins)."""
    params = {"q": query, "limit": limit, **{k: v for k, v in filters.items() if v}}
    found = Api(url, token).json("GET", "/api/v1/audit/events", params=params)
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    for event in found["events"]:
        click.echo(_event_line(event))
    click.echo(f"{found['total']} matching event(s).")


def _event_line(event: dict[str, Any]) -> str:
    who = event["actor"]["username"] or event["actor"]["subject"] or "-"
    return (
        f"{event['sequence']:>6}  {event['time']}  {event['outcome']:<7}  "
        f"{who:<12}  {event['action']:<24}  {event['resource']['type']}:"
        f"{event['resource']['id']}"
    )


def _story_options(function: Any) -> Any:
    function = click.option(
        "--format",
        "report_format",
        type=click.Choice(["text", "json", "html", "pdf"]),
        default="text",
        show_default=True,
    )(function)
    return click.option(
        "--output",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Write the report to this file (required for html and pdf).",
    )(function)


def _story(
    api: Api,
    path: str,
    params: dict[str, str],
    report_format: str,
    output: Path | None,
) -> None:
    if report_format in ("html", "pdf") and output is None:
        raise click.UsageError(f"--format {report_format} needs --output.")
    wanted = "json" if report_format == "text" else report_format
    response = api.request("GET", path, params={**params, "format": wanted})
    if output is not None:
        output.write_bytes(response.content)
        click.echo(f"Report written to {output}.")
        return
    if report_format == "json":
        click.echo(json.dumps(response.json(), indent=2))
        return
    story = response.json()
    for event in story["events"]:
        click.echo(_event_line(event))
    more = " (only the newest; narrow the period)" if story["is_truncated"] else ""
    click.echo(f"{len(story['events'])} event(s){more}.")


@audit.command("lineage")
@_api_options
@_story_options
@click.argument("document_id")
def audit_lineage(
    url: str | None,
    token: str | None,
    document_id: str,
    report_format: str,
    output: Path | None,
) -> None:
    """Show every event that touched one document, upload to export."""
    api = Api(url, token)
    _story(
        api, f"/api/v1/audit/lineage/documents/{document_id}", {}, report_format, output
    )


@audit.command("activity")
@_api_options
@_story_options
@click.argument("username")
@click.option("--since", default="", help="ISO 8601 time with offset.")
@click.option("--until", default="", help="ISO 8601 time with offset.")
def audit_activity(
    url: str | None,
    token: str | None,
    username: str,
    since: str,
    until: str,
    report_format: str,
    output: Path | None,
) -> None:
    """Show everything one person did and read in a period."""
    params = {k: v for k, v in (("since", since), ("until", until)) if v}
    api = Api(url, token)
    _story(api, f"/api/v1/audit/activity/{username}", params, report_format, output)


@audit.command("prove")
@_api_options
@click.argument("event_id")
@click.option(
    "--public-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The checkpoint signing key (PEM) to trust; default: the one the "
    "server names, which only proves consistency with the server.",
)
def audit_prove(
    url: str | None, token: str | None, event_id: str, public_key: Path | None
) -> None:
    """Check here that one event is sealed under a signed checkpoint."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    from strongroom.services.audit.domain import (
        Checkpoint,
        SignedCheckpoint,
        signature_holds,
    )
    from strongroom.services.audit.merkle import leaf_hash, verify_inclusion

    api = Api(url, token)
    proof = api.json("GET", f"/api/v1/audit/events/{event_id}/proof")
    listed = api.json("GET", "/api/v1/audit/checkpoints")
    pem = public_key.read_bytes() if public_key else listed["public_key_pem"].encode()
    key = load_pem_public_key(pem)
    statement = json.loads(proof["checkpoint"]["statement"])
    signed = SignedCheckpoint(Checkpoint(**statement), proof["checkpoint"]["signature"])
    checkpoint = signed.checkpoint
    if not signature_holds(signed, key):  # type: ignore[arg-type]
        raise click.ClickException("The checkpoint's signature does not verify.")
    included = verify_inclusion(
        proof["sequence"] - 1,
        checkpoint.tree_size,
        leaf_hash(bytes.fromhex(proof["entry_hash"])),
        [bytes.fromhex(node) for node in proof["audit_path"]],
        bytes.fromhex(checkpoint.root_hash),
    )
    if not included:
        raise click.ClickException(
            f"Event {event_id} is NOT included under checkpoint {checkpoint.number}."
        )
    click.echo(
        f"Event {event_id} (entry {proof['sequence']}) is included under "
        f"checkpoint {checkpoint.number} of {checkpoint.tree_size} entries, "
        f"signed by key {checkpoint.key_id} at {checkpoint.time}."
    )
