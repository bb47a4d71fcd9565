"""The record of the last complete suite ETL, so that a re-run with nothing new does no work.

After a suite ETL whose pipelines all went well (ok or skipped) and use only doe's own steps, the manifest
keeps what the outcome depended on: a signature of the request (stored design or given `$ETL$`, pipeline
selection, config dir), the (size, mtime) of every directory and file the extraction relied on (the same
stamps the extraction cache trusts: a new, deleted or changed job folder or file changes one of them), the
experiment folders that had no results yet, and the (size, mtime, inode) of every output file. A re-run whose
signature and stamps all match answers with the recorded outcomes and touches nothing.

Standard library only: the check runs before pandas is imported, and a process that finds nothing changed
never imports it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from etl import safecache
from etl.report import EtlReport, PipelineOutcome
from etl.stamps import RACY_NS, entries, first, groups_unchanged, latest_mtime, without_first

MANIFEST_VERSION = 5  # 5: signed JSON (etl.safecache) instead of pickle
_KIND = f"manifest/{MANIFEST_VERSION}"
_MISSING = (-1, -1)


def signature(
    suite_dir: Path, design_text: bytes, etl_section: dict | None, pipelines: list[str] | None, config_dir
) -> str | None:
    """What the outcome depends on besides the files, including doe's own ETL code (an upgrade is not answered
    from a record of the old code); None when it may depend on more (`$INCLUDE_*$` pulls in other designs or
    templates)."""
    section_text = (
        b"" if etl_section is None else json.dumps(etl_section, sort_keys=True, default=str).encode()
    )
    if b"$INCLUDE_" in (design_text if etl_section is None else section_text):
        return None
    digest = hashlib.sha1(f"{MANIFEST_VERSION}\0{suite_dir.name}\0{pipelines!r}\0{config_dir}\0".encode())
    package = Path(__file__).parent
    for module in sorted(package.rglob("*.py")):
        found = module.stat()
        digest.update(f"{module.relative_to(package)}\0{found.st_size}\0{found.st_mtime_ns}\0".encode())
    digest.update(design_text)
    digest.update(b"\0")
    digest.update(section_text)
    return digest.hexdigest()


def manifest_path(cache_dir: Path, pipelines: list[str] | None, from_section: bool) -> Path:
    """One manifest per kind of request, so that `--pipelines p` does not replace the one of all pipelines."""
    key = hashlib.sha1(f"{sorted(pipelines) if pipelines else None!r}\0{from_section}".encode()).hexdigest()
    return cache_dir / f"manifest-{key[:12]}.cache"


def replay(path: Path, suite_dir: Path, expected_signature: str) -> EtlReport | None:
    """The recorded report if nothing changed since the manifest was written; None otherwise."""
    found = safecache.read_json(path, _KIND)  # None unless this user wrote it: see etl.safecache
    if found is None:
        return None
    manifest, blobs = found
    if not isinstance(manifest, dict) or manifest.get("signature") != expected_signature:
        return None
    try:
        folder = os.open(suite_dir, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        # The folders of experiments and runs come first, decoded on their own: a new job changes one of
        # them, and the rest (most of the manifest) is then never decoded.
        if not _inputs_match(folder, *manifest["head"]):
            return None
        rest = json.loads(blobs[manifest["rest"]].tobytes())
        stamps = safecache.StampsReader(rest["names"], blobs[manifest["values"]])
        groups = [
            (f"{suite_dir}/{prefix}", stamps.get(names, offset)) for prefix, names, offset in rest["groups"]
        ]
        if not all(groups_unchanged(groups)):
            return None
        if not _outputs_match(folder, manifest["outputs"]):
            return None
        return EtlReport(
            [
                PipelineOutcome(jobs_read=0, output_dir=suite_dir / out if out else None, **fields)
                for fields, out in manifest["outcomes"]
            ]
        )
    except (KeyError, TypeError, ValueError, IndexError):
        return None  # a manifest of another layout: the run does the work and writes a new one
    finally:
        os.close(folder)


def _inputs_match(folder: int, paths: list[str], sizes: list[int], mtimes: list[int]) -> bool:
    # Paths are relative to the suite folder (one lookup less per stat) and sorted shallow first: a new
    # job changes a directory's mtime, found before the many file stamps are compared.
    stat = os.stat
    for path, size, mtime in zip(paths, sizes, mtimes):
        try:
            found = stat(path, dir_fd=folder)
        except FileNotFoundError:
            if size != _MISSING[0]:
                return False
            continue
        except OSError:
            return False
        if found.st_mtime_ns != mtime or found.st_size != size:
            return False
    return True


def _outputs_match(folder: int, outputs: list[tuple[str, int, int, int]]) -> bool:
    for path, size, mtime, inode in outputs:
        try:
            found = os.stat(path, dir_fd=folder)
        except OSError:
            return False
        if (found.st_size, found.st_mtime_ns, found.st_ino) != (size, mtime, inode):
            return False
    return True


def record(
    path: Path,
    suite_dir: Path,
    expected_signature: str,
    report: EtlReport,
    empty_experiments: list[Path],
    started_ns: int,
) -> bool:
    """Write the manifest of a complete ETL; False (and no manifest) when a re-run could not trust it."""
    outcomes = report.outcomes
    if report.config_error is not None or not outcomes:
        return False
    if any(o.status == "error" or not o.builtin_only for o in outcomes):
        return False
    # Pipelines that share an extraction share its groups: one each, by run folder (or experiment folder).
    groups = {
        prefix or stamps[0][0]: (prefix, stamps) for o in outcomes for prefix, stamps in o.inputs if stamps[0]
    }
    if any(latest_mtime(stamps) > started_ns - RACY_NS for _, stamps in groups.values()):
        return False
    prefix = f"{suite_dir}/"
    cut = len(prefix)
    head: dict[str, tuple[int, int]] = {}  # experiment and run folders
    rest = []  # (run folder relative to the suite folder + "/", the stamps below it: its own is in the head)
    names_memo: dict = {}
    for group, stamps in groups.values():
        if not group:  # an experiment folder: absolute names
            for name, size, mtime in entries(stamps):
                if not name.startswith(prefix):
                    return False
                head[name[cut:]] = (size, mtime)
        elif not group.startswith(prefix) or stamps[0][0] != "":
            return False
        else:
            head[group[cut:-1]] = first(stamps)[1:]
            rest.append((group[cut:], without_first(stamps, names_memo)))
    for folder in empty_experiments:
        try:
            found = os.stat(folder)
        except FileNotFoundError:
            head[str(folder)[cut:]] = _MISSING
            continue
        if found.st_mtime_ns > started_ns - RACY_NS:
            return False
        head[str(folder)[cut:]] = (found.st_size, found.st_mtime_ns)
    ordered = sorted(head, key=lambda name: name.count("/"))  # experiments before their runs
    outputs = []
    for outcome in outcomes:
        if outcome.status != "ok" or outcome.output_dir is None:
            continue
        for root, _, files in os.walk(outcome.output_dir):
            for name in sorted(files):
                found = os.stat(f"{root}/{name}")
                outputs.append((f"{root}/{name}"[cut:], found.st_size, found.st_mtime_ns, found.st_ino))
    table = safecache.StampsTable()
    groups_of_rest = [[prefix, *table.add(stamps)] for prefix, stamps in rest]
    blobs = [
        safecache.to_json({"names": table.names_list(), "groups": groups_of_rest}),
        table.values_blob(),
    ]
    manifest = {
        "signature": expected_signature,
        "head": (ordered, [head[name][0] for name in ordered], [head[name][1] for name in ordered]),
        "rest": 0,
        "values": 1,
        "outputs": outputs,
        "outcomes": [
            (
                {
                    "pipeline": o.pipeline,
                    "status": o.status,
                    "message": o.message,
                    "warnings": list(o.warnings),
                    "rows": o.rows,
                    "jobs": o.jobs,
                },
                str(o.output_dir.relative_to(suite_dir)) if o.output_dir is not None else None,
            )
            for o in outcomes
        ],
    }
    # No fsync: a torn manifest fails its check and the next run does the work.
    return safecache.write(path, _KIND, manifest, blobs)
