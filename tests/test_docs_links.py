"""Every Markdown link in README.md and docs/*.md leads somewhere: a relative link names a file that exists,
an #anchor names a heading of the page it points to (GitHub's slug), an external link is well-formed (CI has
no network, so it is not fetched), and every docs page is linked from the README."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

REPO = Path(__file__).resolve().parents[1]

# [text](target) or ![alt](target), the target optionally followed by a "title"
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"#{1,6}\s+(.*?)\s*#*\s*$")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)*?\1", re.DOTALL)


def markdown_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks: a heading in a fence is text."""
    lines: list[tuple[int, str]] = []
    in_fence = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
            continue
        if not in_fence:
            lines.append((number, line))
    return lines


def links(text: str) -> list[tuple[int, str]]:
    """(line number, target) of every link outside code; a link's text may run over several lines."""
    prose = dict(prose_lines(text))
    lines = [prose.get(number, "") for number in range(1, text.count("\n") + 2)]
    # code spans may run over lines too: blank them, keeping the newlines so that line numbers hold
    joined = CODE_SPAN.sub(lambda span: "\n" * span.group(0).count("\n"), "\n".join(lines))
    return [(joined.count("\n", 0, match.start()) + 1, match.group(1)) for match in LINK.finditer(joined)]


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: link markup reduced to its text, lower case, punctuation other than
    '-' and '_' dropped, spaces made hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's slug in one file; a repeated heading gets GitHub's -1, -2, ... suffix."""
    seen: dict[str, int] = {}
    slugs: set[str] = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.fullmatch(line)
        if not match:
            continue
        slug = github_slug(match.group(1))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        slugs.add(slug if count == 0 else f"{slug}-{count}")
    return slugs


def link_problem(source: Path, target: str) -> str | None:
    """Why the link `target` in `source` leads nowhere, or None when it is sound."""
    parts = urlsplit(target)
    if parts.scheme in ("http", "https"):
        well_formed = "." in parts.netloc and " " not in target
        return None if well_formed else "not a well-formed URL"
    if parts.scheme or parts.netloc:
        return f"unexpected scheme {parts.scheme!r}: only relative links, #anchors and http(s) URLs"
    linked = (source.parent / parts.path).resolve() if parts.path else source
    if not linked.exists():
        return f"{parts.path} does not exist"
    if REPO not in linked.parents and linked != REPO:
        return f"{parts.path} is outside the repository"
    if parts.fragment and linked.suffix == ".md" and parts.fragment not in anchors(linked):
        return f"no heading with anchor #{parts.fragment} in {linked.relative_to(REPO)}"
    return None


def broken_links(path: Path) -> list[str]:
    """'file:line: (link): why' for every link of one Markdown file that leads nowhere."""
    problems = []
    for number, target in links(path.read_text(encoding="utf-8")):
        why = link_problem(path, target) if target else "empty link target"
        if why:
            problems.append(f"{path.relative_to(REPO)}:{number}: ({target}): {why}")
    return problems


def test_every_link_in_the_readme_and_docs_leads_somewhere() -> None:
    problems = [problem for path in markdown_files() for problem in broken_links(path)]
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_every_docs_page_is_linked_from_the_readme() -> None:
    readme = REPO / "README.md"
    linked = {
        (readme.parent / urlsplit(target).path).resolve() for _, target in links(readme.read_text(encoding="utf-8"))
    }
    unlinked = [str(page.relative_to(REPO)) for page in markdown_files()[1:] if page.resolve() not in linked]
    assert not unlinked, f"docs pages the README does not link: {unlinked}"


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        (
            "Walkthrough: your own model, from `init` to the report",
            "walkthrough-your-own-model-from-init-to-the-report",
        ),
        ("In CI: `.github/workflows/trt-upgrade-gate.yml`", "in-ci-githubworkflowstrt-upgrade-gateyml"),
        ("How good is the latency gate?", "how-good-is-the-latency-gate"),
        ("Parallel runs, several GPUs, CI shards", "parallel-runs-several-gpus-ci-shards"),
        ("harness_spec and [the spec](docs/spec.md)", "harness_spec-and-the-spec"),
    ],
)
def test_github_slug(heading: str, slug: str) -> None:
    assert github_slug(heading) == slug


def test_a_broken_link_is_named_with_file_line_and_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(f"{__name__}.REPO", tmp_path.resolve())
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("# Page\n\n## A section\n")
    readme = tmp_path.resolve() / "README.md"
    readme.write_text(
        "# Title\n\n"
        "[fine](docs/page.md#a-section) [fine too](#title) [web](https://example.com/x)\n"
        "`[in code](missing.md)`\n"
        "```\n[in a fence](missing.md)\n```\n"
        "[gone](docs/missing.md) [no anchor](docs/page.md#another-section)\n"
        "[bad url](https://nohost) [here](#nowhere) [a text over\ntwo lines](docs/page.md#no-such)\n"
    )
    assert broken_links(readme) == [
        "README.md:8: (docs/missing.md): docs/missing.md does not exist",
        "README.md:8: (docs/page.md#another-section): no heading with anchor #another-section in docs/page.md",
        "README.md:9: (https://nohost): not a well-formed URL",
        "README.md:9: (#nowhere): no heading with anchor #nowhere in README.md",
        "README.md:9: (docs/page.md#no-such): no heading with anchor #no-such in docs/page.md",
    ]
