"""Server errors, each mapped to an HTTP answer by one handler in ``api/errors.py``.

ConveyorError
 └── ServerError
      ├── SettingsError
      ├── Unauthorized          401 (no or unknown token, blocked user)
      │    └── TokenRejected    {"error": "invalid_token", ...} (revoked or expired)
      ├── Forbidden             403 (wrong runner/job token, job not running, role too low)
      │    └── InsufficientScope {"error": "insufficient_scope", ...} (a read_api token writing)
      ├── NotFound              404
      ├── BadRequest            400
      │    ├── GitError         (sources/git.py) a git command failed
      │    ├── Invalid          GitLab's model validation: {"message": {"attr": ["msg"]}}
      │    └── ParamError       Grape's parameter validation: {"error": "ref is missing"}
      ├── SecretsKeyMissing     500 (CONVEYOR_SECRETS_KEY unset where a secret is stored or read)
      ├── Conflict              409
      ├── Unprocessable         422
      │    ├── InvalidUrl       {"error": "Invalid url given"} (a hook's URL)
      │    └── BlockedUrl       {"message": {"url": ["is blocked: ..."]}} (into the local network)
      ├── Gone                  410 (legacy runner registration is switched off)
      ├── PayloadTooLarge       413
      ├── RangeMismatch         416 (carries the server's size)
      └── ArchiveMismatch       (archive/traces.py) an archive did not verify; chunks kept
"""

from __future__ import annotations

from conveyor.protocol.errors import ConveyorError


class ServerError(ConveyorError):
    """Server error."""

    status_code = 500
    body_key = "message"  # GitLab's helpers answer {"message": ...}; Grape's validations {"error": ...}


class SettingsError(ServerError):
    """Invalid settings."""


class Unauthorized(ServerError):
    """401 Unauthorized"""

    status_code = 401


class TokenRejected(Unauthorized):
    """401 with OAuth's body: the token was revoked or has expired."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.body = {"error": "invalid_token", "error_description": description}


class Forbidden(ServerError):
    """403 Forbidden"""

    status_code = 403

    def __init__(self, message: str | None = None, job_status: str | None = None) -> None:
        super().__init__(message)
        self.job_status = job_status


class InsufficientScope(Forbidden):
    """403 with OAuth's body: the token lacks the scope the call needs."""

    def __init__(self, scopes: str = "api") -> None:
        super().__init__("insufficient_scope")
        self.body = {
            "error": "insufficient_scope",
            "error_description": "The request requires higher privileges than provided by the access token.",
            "scope": scopes,
        }


class NotFound(ServerError):
    """404 Not Found"""

    status_code = 404


class BadRequest(ServerError):
    """400 Bad Request"""

    status_code = 400


class Invalid(BadRequest):
    """400 Bad Request with GitLab's model-validation body, ``{"message": {attr: [msg, ...]}}``."""

    def __init__(self, details: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k} {' '.join(v)}" for k, v in details.items()))
        self.details = details


class ParamError(BadRequest):
    """400 Bad Request with Grape's body, ``{"error": "<param> is missing"}``."""

    body_key = "error"


class SecretsKeyMissing(ServerError):
    """CONVEYOR_SECRETS_KEY is not set: secrets cannot be stored or read (generate one with
    `python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`)."""


class Unprocessable(ServerError):
    """422 Unprocessable Entity"""

    status_code = 422


class InvalidUrl(Unprocessable):
    """Invalid url given"""

    body_key = "error"


class Conflict(ServerError):
    """409 Conflict"""

    status_code = 409


class Gone(ServerError):
    """410 Gone"""

    status_code = 410


class PayloadTooLarge(ServerError):
    """413 Payload Too Large"""

    status_code = 413


class RangeMismatch(ServerError):
    """416 Range Not Satisfiable"""

    status_code = 416

    def __init__(self, size: int, message: str | None = None) -> None:
        super().__init__(message or "416 Range Not Satisfiable")
        self.size = size


class BlockedUrl(Unprocessable):
    """422 with GitLab's model-validation body: the URL points into the local network."""

    def __init__(self) -> None:
        self.details = {"url": ["is blocked: Requests to the local network are not allowed"]}
        super().__init__("url is blocked: Requests to the local network are not allowed")
