"""The ETL's caches are signed data (etl.safecache, etl.cachecodec): a cache file in a received results folder
(tampered, foreign, torn, or a pickle) is never executed, never trusted, and is built again."""

from __future__ import annotations

import ast
import datetime as dt
import os
import pickle
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from etl import cachecodec, extract, extract_cache, safecache
from etl.api import run_suite_etl
from tests.unit.etl.test_cli import invoke
from tests.unit.etl.test_etl_rerun import PIPELINES, output
from tests.unit.etl.tree import age_tree

ETL_PACKAGE = Path(extract.__file__).parent


@pytest.fixture
def key_home(tmp_path, monkeypatch):
    """A key of this test's own (the tests never touch the user's), switchable to another user's."""

    def use(name: str) -> Path:
        home = tmp_path / f"xdg-{name}"
        monkeypatch.setenv("XDG_CACHE_HOME", str(home))
        return home / "doe" / "cache.key"

    use("me")
    return use


@pytest.fixture
def done_suite(make_suite, key_home):
    suite_dir = make_suite(PIPELINES)
    age_tree(suite_dir)
    report = run_suite_etl(suite_dir)
    assert report.ok and report.by_pipeline()["p"].jobs_read == 6
    return suite_dir


def cache_files(suite_dir: Path) -> dict[str, Path]:
    """One cache file of each kind: extraction, transformer state, CSV state, re-run manifest."""
    found = sorted((suite_dir / "etl_results" / ".cache").rglob("*.cache"))
    kinds = {
        "extract": [p for p in found if p.parent.name.startswith("extract-")],
        "transform": [p for p in found if p.name.startswith("transform-")],
        "csv": [p for p in found if p.name.startswith("csv-")],
        "manifest": [p for p in found if p.name.startswith("manifest-")],
    }
    assert all(kinds.values()), kinds  # every kind was written, so every kind is put to the test
    assert len(found) == sum(map(len, kinds.values()))
    return {f"{kind}:{path.name}": path for kind, paths in kinds.items() for path in paths}


def outputs(suite_dir: Path) -> dict[str, str]:
    return {name: output(suite_dir, name) for name in PIPELINES}


def assert_rebuilt(suite_dir: Path, expected: dict[str, str]) -> None:
    """The ETL ignored every cache (all jobs read again), wrote the same outputs and signed caches of its own
    that the next run uses."""
    report = run_suite_etl(suite_dir)
    assert report.ok, report.lines()
    assert report.by_pipeline()["p"].jobs_read == 6
    assert outputs(suite_dir) == expected
    for path in cache_files(suite_dir).values():
        assert path.read_bytes().startswith(safecache.MAGIC)
    assert run_suite_etl(suite_dir).by_pipeline()["p"].jobs_read == 0


# -- (a) round trips ---------------------------------------------------------------------------------------
def test_values_of_every_supported_kind_round_trip_exactly(tmp_path, key_home):
    frame = pd.DataFrame(
        {
            "text": ["x", None, "z"],
            "int": [1, 2, 3],
            "float": [1.5, float("nan"), -0.0],
            "bool": [True, False, True],
            "when": pd.to_datetime(["2020-01-01 00:00", "2021-06-01 12:00", None]),
            "mixed": [{"a": [1, 2]}, (1, "b"), None],
            "objects": np.array(["p", 7, 2.5], dtype=object),
        }
    )
    frame["python_str"] = pd.array(["a", None, "c"], dtype=pd.StringDtype("python"))
    aggregated = frame.groupby("text").agg({"int": ["mean", "std"]})
    value = {
        "frame": frame,
        "aggregated": aggregated,  # MultiIndex columns, str index
        "layout": [(type(name), name) for name in aggregated.columns],
        "ids": np.arange(5, dtype=np.uint64),
        "nested": (1, "a", None, [2.5, float("inf")], {3: b"\x00raw", (1, 2): {4, 5}}),
        "times": [dt.datetime(2020, 1, 1, tzinfo=dt.UTC), dt.date(2021, 2, 3), dt.timedelta(3, 4, 5)],
        "pandas": [pd.Timestamp("2020-01-01 00:00:00.123456789"), pd.NA, pd.NaT],
        "scalars": [np.int64(2**40), np.float64(0.1)],
        "empty": pd.DataFrame(index=pd.RangeIndex(3)),
    }
    path = tmp_path / "value.cache"
    assert cachecodec.save(path, "test", value)
    back = cachecodec.load(path, "test")
    for name in ("frame", "aggregated", "empty"):
        pd.testing.assert_frame_equal(back[name], value[name], check_exact=True, check_column_type=True)
        assert list(back[name].dtypes) == list(value[name].dtypes)
    assert back["frame"]["mixed"].tolist() == value["frame"]["mixed"].tolist()
    assert back["frame"]["objects"].map(type).tolist() == [str, int, float]  # not made a str column
    assert np.signbit(back["frame"]["float"].iloc[2])
    assert back["layout"] == value["layout"]
    assert back["ids"].dtype == np.uint64 and back["ids"].tolist() == list(range(5))
    for name in ("nested", "times", "scalars"):
        assert back[name] == value[name] and [type(v) for v in back[name]] == [type(v) for v in value[name]]
    assert back["pandas"][0] == value["pandas"][0] and back["pandas"][1] is pd.NA and back["pandas"][2] is pd.NaT
    assert cachecodec.load(path, "another kind") is None


def test_a_value_the_format_does_not_hold_leaves_no_cache(tmp_path, key_home):
    path = tmp_path / "value.cache"
    assert cachecodec.save(path, "test", {"a": 1})
    assert not cachecodec.save(path, "test", {"a": object()})
    assert not path.exists()  # the older file must not stand for the new value


def test_the_extraction_cache_round_trips(done_suite):
    (path,) = (p for name, p in cache_files(done_suite).items() if name.endswith("__alpha.cache"))
    cache = extract_cache.load(path)
    assert cache.runs and cache.frame is not None and len(cache.frame)
    copy = path.with_name("copy.cache")
    assert extract_cache.save(copy, cache)
    again = extract_cache.load(copy)
    for name in ("dirs", "configs", "jobs", "runs", "next_job_id", "text_columns", "numeric", "generation"):
        assert getattr(again, name) == getattr(cache, name), name
    pd.testing.assert_frame_equal(again.frame, cache.frame, check_exact=True)
    record = next(iter(again.runs.values()))
    dirs, configs, jobs = extract_cache.unpack_entries(record.entries)
    assert dirs and configs and jobs and all(isinstance(entry[1], tuple) for entry in jobs.values())  # compared with tuples


# -- (b) a pickle planted in a results folder is never run -------------------------------------------------
class _Planted:
    """Unpickling this runs a shell command: what a hostile results folder would plant."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("through", ["api", "cli"])
def test_a_planted_pickle_is_not_run_and_the_caches_are_rebuilt(done_suite, tmp_path, through):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Planted(marker))
    pickle.loads(payload)  # the payload works: unpickled, it makes the marker
    assert marker.exists()
    marker.unlink()
    expected = outputs(done_suite)
    for path in cache_files(done_suite).values():
        path.write_bytes(payload)
        path.with_suffix(".pkl").write_bytes(payload)  # where the pickles of earlier versions were
    if through == "cli":
        result = invoke(tmp_path, "etl", "--suite", "demo", "--id", "last")
        assert result.exit_code == 0, result.output
        assert not marker.exists()
        assert outputs(done_suite) == expected
        assert all(p.read_bytes().startswith(safecache.MAGIC) for p in cache_files(done_suite).values())
        assert run_suite_etl(done_suite).by_pipeline()["p"].jobs_read == 0
    else:
        assert_rebuilt(done_suite, expected)
    assert not marker.exists()


# -- (c) an edited cache, or one signed with another key -------------------------------------------------
@pytest.mark.parametrize("where", ["header", "end"])
def test_a_cache_with_a_flipped_byte_is_ignored_and_rebuilt(done_suite, where):
    expected = outputs(done_suite)
    for path in cache_files(done_suite).values():
        data = bytearray(path.read_bytes())
        position = len(safecache.MAGIC) + 32 + 8 + 2 if where == "header" else len(data) - 1
        data[position] ^= 0x01
        path.write_bytes(bytes(data))
    assert_rebuilt(done_suite, expected)


def test_a_cache_signed_with_another_users_key_is_not_trusted(done_suite, key_home):
    """Someone else's folder: its caches may claim rows the result files do not hold. Under its writer's own
    key an edited, re-signed cache is used (the control: the cache is trusted then); under another user's
    key it is not, and the outputs come from the result files."""
    expected = outputs(done_suite)
    (path,) = (p for name, p in cache_files(done_suite).items() if name.endswith("__alpha.cache"))
    cache = extract_cache.load(path)
    cache.frame = cache.frame.assign(lat=cache.frame["lat"] + 1000)
    assert extract_cache.save(path, cache)
    for name, other in cache_files(done_suite).items():
        if not name.endswith("__alpha.cache"):
            other.unlink()  # else the manifest answers before any extraction
    run_suite_etl(done_suite)
    forged = output(done_suite)
    assert forged != expected["p"]  # the writer's own key: the forged rows were trusted

    key_home("someone-else")
    for name, other in cache_files(done_suite).items():
        if not name.endswith("__alpha.cache"):
            other.unlink()
    report = run_suite_etl(done_suite)
    assert report.ok and report.by_pipeline()["p"].jobs_read == 6
    assert outputs(done_suite) == expected
    assert run_suite_etl(done_suite).by_pipeline()["p"].jobs_read == 0  # re-signed with the new key


# -- (d) a torn file -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("keep", [0.5, 0.02])
def test_a_torn_cache_is_ignored_and_rebuilt(done_suite, keep):
    expected = outputs(done_suite)
    for path in cache_files(done_suite).values():
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])
    assert_rebuilt(done_suite, expected)


# -- the key -------------------------------------------------------------------------------------------------
def test_the_key_is_private_and_a_readable_one_is_replaced(key_home):
    path = key_home("fresh")
    key = safecache.cache_key()
    assert key is not None and len(key) == safecache.KEY_BYTES
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0
    assert safecache.cache_key() == key == path.read_bytes()

    shared = key_home("shared")
    shared.parent.mkdir(parents=True)
    shared.write_bytes(b"k" * safecache.KEY_BYTES)
    shared.chmod(0o644)  # others could read it: no secret
    replaced = safecache.cache_key()
    assert replaced != b"k" * safecache.KEY_BYTES and stat.S_IMODE(shared.stat().st_mode) == 0o600


def test_without_a_usable_key_no_cache_is_read_or_written(tmp_path, monkeypatch):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    assert safecache.cache_key() is None
    assert not safecache.write(tmp_path / "x.cache", "k", {"a": 1})
    assert not (tmp_path / "x.cache").exists()


# -- nothing under etl/ unpickles ------------------------------------------------------------------------------
# (module, what) pairs allowed, and why:
ALLOWED = {
    # The frame as <pipeline>.pkl, an output doe-suite projects ask for: written only, never read by doe.
    ("steps/loaders.py", "pickle"),
    ("steps/loaders.py", "pickle.dump"),
    ("steps/loaders.py", "pickle.HIGHEST_PROTOCOL"),
    # Stamps sent to a helper process over its stdin pipe, read there: process-internal, no file involved.
    ("stamps.py", "marshal"),
    ("stamps.py", "marshal.dumps"),
    ("stat_worker.py", "marshal"),
    ("stat_worker.py", "marshal.loads"),
}
UNSAFE_MODULES = {"pickle", "marshal", "shelve", "dill", "cloudpickle", "joblib", "_pickle", "cPickle"}
UNSAFE_CALLS = {"eval", "exec", "read_pickle", "unsafe_load", "full_load", "Unpickler"}


def unsafe_uses(source: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNSAFE_MODULES:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id in UNSAFE_MODULES:
                found.add(f"{node.value.id}.{node.attr}")
            elif node.attr in UNSAFE_CALLS:
                found.add(node.attr)
            elif node.value.id == "yaml" and node.attr == "load":
                found.add("yaml.load")
        elif isinstance(node, ast.Name) and node.id in UNSAFE_CALLS:
            found.add(node.id)
    return found


def test_the_scan_finds_what_it_looks_for():
    source = (
        "import pickle\nfrom marshal import loads\nimport pandas as pd\n"
        "pickle.loads(b'')\npd.read_pickle('x')\neval('1')\nyaml.load(t, Loader=L)\n"
    )
    assert unsafe_uses(source) == {"pickle", "marshal", "pickle.loads", "read_pickle", "eval", "yaml.load"}


def test_no_module_under_etl_unpickles_or_evaluates():
    found = set()
    for module in sorted(ETL_PACKAGE.rglob("*.py")):
        name = module.relative_to(ETL_PACKAGE).as_posix()
        found.update((name, use) for use in unsafe_uses(module.read_text()))
    # yaml.load is allowed only with a safe loader: checked by name below.
    yaml_loads = {entry for entry in found if entry[1] == "yaml.load"}
    assert found - yaml_loads == ALLOWED
    for name, _ in yaml_loads:
        text = (ETL_PACKAGE / name).read_text()
        assert '_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)' in text
        assert "Loader=_YAML_LOADER" in text and "yaml.load(" in text
        assert text.count("yaml.load(") == text.count("Loader=_YAML_LOADER"), name
