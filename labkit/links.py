"""Open-in-Colab / Open-in-Kaggle links for every notebook, from a configurable repository.

The repository is ``$LABKIT_REPO`` (``OWNER/NAME`` or a GitHub URL), else :data:`DEFAULT_REPO`;
``labkit links --repo OWNER/NAME`` prints the README table for a fork.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

DEFAULT_REPO = "labkit-course/labkit"
DEFAULT_BRANCH = "main"


def repo_slug(repo: str | None = None) -> str:
    """``OWNER/NAME`` from a slug or a GitHub URL (default: ``$LABKIT_REPO`` or :data:`DEFAULT_REPO`)."""
    repo = repo or os.environ.get("LABKIT_REPO") or DEFAULT_REPO
    m = re.search(r"github\.com[/:]([^/]+/[^/.]+)", repo)
    slug = m.group(1) if m else repo.strip("/")
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", slug):
        from labkit.errors import UserError

        raise UserError(f"--repo {repo!r}: expected OWNER/NAME (letters, digits, '.', '-', '_') or a GitHub URL")
    return slug


def colab_url(notebook: str, repo: str | None = None, branch: str = DEFAULT_BRANCH) -> str:
    return f"https://colab.research.google.com/github/{repo_slug(repo)}/blob/{branch}/notebooks/{notebook}"


def kaggle_url(notebook: str, repo: str | None = None, branch: str = DEFAULT_BRANCH) -> str:
    return f"https://kaggle.com/kernels/welcome?src=https://github.com/{repo_slug(repo)}/blob/{branch}/notebooks/{notebook}"


def badges_table(notebooks: list[Path], repo: str | None = None, branch: str = DEFAULT_BRANCH) -> str:
    """The README's markdown table: one row per notebook with Colab and Kaggle badges."""
    rows = ["| Notebook | Colab | Kaggle |", "|---|---|---|"]
    for nb in notebooks:
        name = Path(nb).name
        rows.append(
            f"| [{name}](notebooks/{name}) "
            f"| [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(name, repo, branch)}) "
            f"| [![Open in Kaggle](https://kaggle.com/static/images/open-in-kaggle.svg)]({kaggle_url(name, repo, branch)}) |"
        )
    return "\n".join(rows)


def update_readme(readme: Path, notebooks: list[Path], repo: str | None = None, branch: str = DEFAULT_BRANCH) -> bool:
    """Rewrite the table between ``<!-- notebooks:start`` and ``<!-- notebooks:end -->``; True if it changed."""
    text = Path(readme).read_text(encoding="utf-8")
    m = re.search(r"(<!-- notebooks:start[^\n]*-->\n)(.*?)(<!-- notebooks:end -->)", text, flags=re.S)
    if not m:
        from labkit.errors import UserError

        raise UserError(f"{readme}: no '<!-- notebooks:start ... -->' / '<!-- notebooks:end -->' markers; add them")
    new = text[: m.start(2)] + badges_table(notebooks, repo, branch) + "\n" + text[m.end(2):]
    if new != text:
        Path(readme).write_text(new, encoding="utf-8")
        return True
    return False
