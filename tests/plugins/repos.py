"""Real git repositories for tests."""

from __future__ import annotations

import subprocess
from pathlib import Path


def make_repo(path: Path, ci_yaml: str, files: dict[str, str] | None = None, branch: str = "main") -> str:
    """Create a repository at ``path`` with one commit; returns its sha."""
    path.mkdir(parents=True, exist_ok=True)
    (path / ".gitlab-ci.yml").write_text(ci_yaml)
    for name, content in (files or {}).items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        if name.endswith(".sh"):
            target.chmod(0o755)
    git = ["git", "-C", str(path), "-c", "user.name=t", "-c", "user.email=t@conveyor.invalid"]
    subprocess.run(["git", "init", "--quiet", f"--initial-branch={branch}", str(path)], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "--quiet", "-m", "test"], check=True)
    return subprocess.run(git + ["rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
