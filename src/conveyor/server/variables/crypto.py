"""Encryption at rest for every secret the server must read back (variable values, hook tokens,
push-webhook secrets): Fernet (AES-128-CBC + HMAC-SHA256) from ``cryptography``.

``CONVEYOR_SECRETS_KEY`` holds one or more keys, comma-separated, newest first: the first
encrypts, any decrypts (``MultiFernet``), so a key is rotated by prepending a new one.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from conveyor.server.errors import SecretsKeyMissing, SettingsError

__all__ = ["SecretBox", "SecretsKeyMissing"]


class SecretBox:
    """Encrypts and decrypts text with the configured key ring; without keys every call raises
    ``SecretsKeyMissing`` (so nothing is ever stored in the clear)."""

    def __init__(self, keys: str | None) -> None:
        self._ring: MultiFernet | None = None
        if keys:
            try:
                self._ring = MultiFernet([Fernet(k.strip().encode()) for k in keys.split(",") if k.strip()])
            except (ValueError, TypeError) as exc:
                raise SettingsError(
                    "secrets_key must be Fernet keys (32 url-safe base64-encoded bytes), comma-separated"
                ) from exc

    @property
    def configured(self) -> bool:
        return self._ring is not None

    def encrypt(self, text: str) -> str:
        if self._ring is None:
            raise SecretsKeyMissing()
        return self._ring.encrypt(text.encode()).decode()

    def decrypt(self, token: str) -> str:
        if self._ring is None:
            raise SecretsKeyMissing()
        try:
            return self._ring.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SettingsError("a stored secret does not decrypt with CONVEYOR_SECRETS_KEY (wrong key?)") from None
