"""Ephemeral SSH keys: one per build, one per boot, never stored in an image.

    private_path, public_line = new_keypair(run_dir / "boot", "golden-test")
"""

import os

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519


def new_keypair(directory, comment):
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"{comment}.key")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private)
    public_line = public.decode() + f" {comment}"
    with open(path + ".pub", "w", encoding="utf-8") as fh:
        fh.write(public_line + "\n")
    return path, public_line
