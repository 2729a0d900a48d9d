"""Dockerfile and .dockerignore: pinned base, non-root, a /healthz check without curl."""

from __future__ import annotations

import fnmatch
import re

from _deploy_helpers import DOCKERFILE, DOCKERIGNORE, REPO

TEXT = DOCKERFILE.read_text()


def _instructions(keyword: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", TEXT)  # line continuations
    return [
        line.split(None, 1)[1]
        for line in joined.splitlines()
        if line.split(None, 1)[:1] == [keyword] and len(line.split(None, 1)) == 2
    ]


def test_base_image_is_a_pinned_python_311_slim() -> None:
    (arg,) = [a for a in _instructions("ARG") if a.startswith("PYTHON_IMAGE=")]
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11\.\d+-slim-[a-z]+", arg), arg
    assert _instructions("FROM") == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE}"]


def test_runtime_runs_as_a_numeric_non_root_user() -> None:
    users = _instructions("USER")
    assert users, "no USER: the worker would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), users[-1]
    assert int(uid) != 0, users[-1]
    assert "runAsUser: " + uid in (REPO / "deploy/kubernetes/base/statefulset.yaml").read_text()


def test_healthcheck_asks_healthz_with_python() -> None:
    (check,) = _instructions("HEALTHCHECK")
    assert "python" in check
    assert "/healthz" in check
    assert "curl" not in check


def test_worker_listens_on_every_interface_by_default() -> None:
    env = " ".join(_instructions("ENV"))
    assert "STREAMKPI_WEB_HOST=0.0.0.0" in env
    assert _instructions("ENTRYPOINT") == ['["streamkpi"]']
    assert _instructions("CMD")[-1] == '["worker"]'


def test_dockerignore_sends_only_the_build_inputs() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        result = False  # later patterns win, `!` re-includes
        for pattern in patterns:
            negate = pattern.startswith("!")
            bare = pattern.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, bare) or path.startswith(bare + "/"):
                result = not negate
        return result

    for needed in ("pyproject.toml", "README.md", "streamkpi/config.py"):
        assert not ignored(needed), needed
    for private in (".venv", ".git", ".streamkpi", "tests/unit/test_config.py"):
        assert ignored(private), private
    copied = {a.split()[0] for a in _instructions("COPY") if not a.startswith("--")}
    assert copied == {"pyproject.toml", "streamkpi"}
