"""`python -m harness merge SHARD.json... -o ALL.json`: the results files of CI shards as one."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness.cli import CliError
from harness.results import schema


def run_merge(paths: Sequence[Path], output: Path, *, allow_mixed: bool) -> int:
    """Merge shards' results files; nothing is written unless every file is usable and they fit together."""
    documents = [schema.load(path) for path in paths]  # the same checks as compare: schema version, ids, samples
    merged = schema.merge([(document.source, document.raw) for document in documents], allow_mixed=allow_mixed)
    try:
        schema.write(output, merged)
    except OSError as error:
        raise CliError(f"cannot write {output} ({error}); pass -o a writable path") from None
    print(f"merged {sum(len(document.tests) for document in documents)} tests from {len(paths)} files into {output}")
    return 0
