"""`python -m harness merge SHARD.json... -o ALL.json`: the results files of CI shards as one."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness.cli.output import write_output
from harness.results import document as results_document


def run_merge(paths: Sequence[Path], output: Path, *, allow_mixed: bool) -> int:
    """Merge shards' results files; nothing is written unless every file is usable and they fit together."""
    documents = [
        results_document.load(path) for path in paths
    ]  # the same checks as compare: schema version, ids, samples
    merged = results_document.merge(
        [(document.source, document.raw) for document in documents], allow_mixed=allow_mixed
    )
    write_output(str(output), lambda: results_document.write(output, merged))
    print(f"merged {sum(len(document.tests) for document in documents)} tests from {len(paths)} files into {output}")
    return 0
