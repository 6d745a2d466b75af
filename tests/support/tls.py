"""A throwaway self-signed certificate made with the openssl command (skipped without it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def self_signed(folder: Path, subject: str, alt_names: str, days: int = 1) -> tuple[Path, Path]:
    """(certificate, key) in ``folder``: ``subject`` the CN, ``alt_names`` e.g. ``IP:127.0.0.1``."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", str(days),
                    "-subj", f"/CN={subject}", "-addext", f"subjectAltName={alt_names}",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key
