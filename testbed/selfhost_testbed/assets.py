"""The files under testbed/assets/: sources and templates the bed writes into builds, hosts and the bundle.

Templates use string.Template placeholders (${name}), which keeps them valid Go/YAML/unit files for the
linters; render() fails on a missing value rather than writing a half-filled file."""
from __future__ import annotations

import os
import string

ASSETS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets")


def path(name: str) -> str:
    return os.path.join(ASSETS_DIR, name)


def text(name: str) -> str:
    # newline="": the bytes on disk, whatever the platform does to line ends
    with open(path(name), encoding="utf-8", newline="") as f:
        return f.read()


def render(name: str, /, **values: object) -> str:
    return string.Template(text(name)).substitute({k: str(v) for k, v in values.items()})


def terraform_backend_stub(name: str) -> str:
    """assets/terraform/backend-stub.go for the remote-state backend `name` (its package is named after it;
    the file says BACKEND_NAME so that it stays a Go file gofmt can read)."""
    return text("terraform/backend-stub.go").replace("BACKEND_NAME", name)
