"""lk's SSH key pair: generated once per installation, or the user's own.

The default pair lives in lk's config folder as ``id_ed25519`` (mode 0600)
and ``id_ed25519.pub``. ``lk run --ssh-key PATH`` uses the user's private key
instead; its public half is read from ``PATH.pub`` or derived from the key.
"""

from __future__ import annotations

import os
from pathlib import Path

from lk_core.errors import SSHError
from lk_core.paths import default_config_dir, ensure_private_dir

KEY_NAME = "id_ed25519"


def default_key_path() -> Path:
    """Where lk's own private key is kept."""
    return default_config_dir() / KEY_NAME


_PUBLIC_KEY_PREFIXES = (b"ssh-", b"ecdsa-sha2-", b"sk-ssh-", b"sk-ecdsa-")
_USUAL_KEY_NAMES = ("id_ed25519", "id_ecdsa", "id_rsa")


def _looks_public(path: Path) -> bool:
    """Whether ``path`` holds an OpenSSH public key line (or is named ``*.pub``)."""
    if path.name.endswith(".pub"):
        return True
    try:
        with path.open("rb") as handle:
            start = handle.read(64).lstrip()
    except OSError:
        return False
    return start.startswith(_PUBLIC_KEY_PREFIXES)


def check_ssh_key_path(path: Path) -> None:
    """Refuse a ``--ssh-key`` path that cannot be a private key file, saying why.

    ``path`` is the user's value with ``~`` expanded. Raises
    :class:`~lk_core.errors.PathArgumentNotFoundError` ("SSH key not found")
    if nothing is there, and :class:`~lk_core.errors.UsageError` for a
    directory, a non-regular file, or a public key (pointing to the private
    key beside it when there is one). Both exit with status 2.
    """
    from lk_core.errors import PathArgumentNotFoundError, UsageError

    if path.is_dir():
        inside = next((path / n for n in _USUAL_KEY_NAMES if (path / n).is_file()), None)
        hint = f"e.g. --ssh-key {inside}" if inside else "not the folder that holds it"
        raise UsageError(f"--ssh-key {path} is a directory: give the private key file ({hint})")
    if not path.exists():
        raise PathArgumentNotFoundError(f"SSH key not found: {path}")
    if not path.is_file():
        raise UsageError(f"--ssh-key {path} is not a regular file: give the private key file")
    if _looks_public(path):
        private = path.with_name(path.name[: -len(".pub")]) if path.name.endswith(".pub") else None
        if private is not None and private.is_file():
            hint = f"use its private key: --ssh-key {private}"
        else:
            hint = "give the private key (the same path without .pub)"
        raise UsageError(f"--ssh-key {path} is a public key: {hint}")


def ensure_default_key() -> Path:
    """Return lk's private key path, generating an ed25519 pair on first use."""
    path = default_key_path()
    if path.exists():
        return path
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    ensure_private_dir(path.parent)
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    tmp = path.with_name(f".{KEY_NAME}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private)
    path.with_name(KEY_NAME + ".pub").write_bytes(public + b" lk\n")
    os.replace(tmp, path)  # another process may have raced us: either key is whole
    return path


def public_key_for(private_key: Path) -> str:
    """The OpenSSH public key line for ``private_key`` (from ``.pub`` or derived)."""
    pub = private_key.with_name(private_key.name + ".pub")
    if pub.is_file():
        text = pub.read_text(encoding="utf-8").strip()
        if text:
            return text
    if not private_key.is_file():
        raise SSHError(f"SSH key not found: {private_key}")
    try:
        from cryptography.hazmat.primitives import serialization

        key = serialization.load_ssh_private_key(private_key.read_bytes(), password=None)
        public = key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
    except Exception as exc:
        raise SSHError(
            f"cannot read SSH key {private_key} ({exc}); pass an unencrypted OpenSSH "
            "private key, or put its public key beside it as .pub"
        ) from exc
    return public.decode()


def check_private_key(path: Path) -> None:
    """Refuse a key lk cannot use unattended (encrypted, unreadable, not a key)."""
    import paramiko

    from lk_core.errors import UsageError

    try:
        paramiko.PKey.from_path(path)
    except (paramiko.PasswordRequiredException, TypeError) as exc:
        if not isinstance(exc, paramiko.PasswordRequiredException) and (
            "password" not in str(exc).lower()
        ):
            raise UsageError(f"cannot use SSH key {path}: {exc}") from None
        raise UsageError(
            f"SSH key {path} is protected by a passphrase: lk needs an unencrypted key "
            "(or omit --ssh-key to use lk's own)"
        ) from None
    except (OSError, paramiko.SSHException, ValueError) as exc:
        raise UsageError(f"cannot use SSH key {path}: {exc}") from None


def choose_ssh_key(ssh_key: str, metadata: bool) -> str:
    """The private key the VM will trust: ``ssh_key`` (checked), or lk's own (made on first use).

    Without the metadata CD the guest is given no key, so lk's own is not made.
    """
    if ssh_key:
        path = Path(ssh_key).expanduser()
        check_ssh_key_path(path)
        check_private_key(path)
        return str(path.absolute())
    if not metadata:
        return ""
    return str(ensure_default_key())
