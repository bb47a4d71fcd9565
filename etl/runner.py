"""Run one pipeline: extract → transform → load, with errors reported per pipeline instead of raised.

Steps only compute (loaders write their output): what an incremental transformer keeps for the next run is
loaded and saved here, in the ETL's cache folder.
"""

from __future__ import annotations

import hashlib
import time
import warnings
from pathlib import Path

import pandas as pd

from etl import cachecodec
from etl.errors import EtlDataError, EtlError
from etl.extract import ExperimentSource, Extraction
from etl.pipeline import Pipeline, StepSpec
from etl.report import PipelineOutcome
from etl.steps.base import (
    IncrementalLoader,
    IncrementalTransformer,
    Lineage,
    LoadContext,
    Transformer,
    is_builtin,
)
from etl.steps.extractors import EtlWarning


def run_pipeline(
    pipeline: Pipeline,
    sources: list[ExperimentSource],
    output_dir: Path,
    etl_info: dict,
    cache_dir: Path | None = None,
    shared: dict | None = None,
) -> PipelineOutcome:
    """Never raises for bad data: the outcome says ok, skipped (no results yet) or error.

    `shared` (one dict per ETL invocation) lets pipelines with the same built-in extractors over the same
    experiments extract once."""
    started = time.perf_counter()
    steps = (*pipeline.extractors, *pipeline.transformers, *pipeline.loaders)
    outcome = PipelineOutcome(
        pipeline.name, "ok", output_dir=output_dir, builtin_only=all(is_builtin(type(s.step)) for s in steps)
    )
    with_results = [source for source in sources if source.has_results()]
    if not with_results:
        outcome.status = "skipped"
        outcome.message = "no results yet for experiments " + ", ".join(
            sorted({f"{s.suite_name}/{s.exp_name}" for s in sources})
        )
        return outcome
    missing = [s for s in sources if s not in with_results]
    if missing:
        outcome.warnings.append(
            "no results yet for " + ", ".join(f"{s.suite_name}/{s.exp_name}" for s in missing)
        )
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", EtlWarning)
            extractor = Extraction(pipeline.name, pipeline.extractors, cache_dir)
            key = (extractor.signature, tuple((str(s.suite_dir), s.exp_name) for s in with_results))
            if shared is not None and extractor.shareable and key in shared:
                extraction = shared[key]
                outcome.jobs_read = 0
            else:
                extraction = extractor.run(with_results)
                outcome.jobs_read = extraction.jobs_read
                if shared is not None and extractor.shareable:
                    shared[key] = extraction
            outcome.warnings.extend(extraction.warnings)
            outcome.inputs = extraction.inputs
            outcome.jobs = extraction.jobs
            frame = extraction.frame
            lineage = extraction.lineage
            for transformer in pipeline.transformers:
                state_file = None
                if cache_dir is not None:
                    state_key = hashlib.sha1(f"{output_dir}\0{transformer.path}".encode()).hexdigest()[:16]
                    state_file = cache_dir / f"transform-{state_key}.cache"
                frame, lineage = _transform(pipeline, transformer, frame, lineage, state_file)
            outcome.rows = len(frame)
            info = {**etl_info, "pipeline": pipeline.name, "etl_output_dir": str(output_dir)}
            _load(pipeline, frame, lineage, info, cache_dir)
        outcome.warnings.extend(str(w.message) for w in caught if issubclass(w.category, EtlWarning))
    except EtlError as error:
        outcome.status = "error"
        outcome.message = str(error)
    except Exception as error:  # noqa: BLE001 - one pipeline's failure must not stop the others
        outcome.status = "error"
        outcome.message = str(_step_error(pipeline, None, error))
    outcome.seconds = time.perf_counter() - started
    return outcome


def _load(
    pipeline: Pipeline, frame: pd.DataFrame, lineage: Lineage | None, info: dict, cache_dir: Path | None
) -> None:
    """Run every loader, each even when others fail; one EtlDataError names all that failed."""
    load_errors = []
    for loader in pipeline.loaders:
        try:
            builtin = is_builtin(type(loader.step))
            given = frame if builtin else frame.copy(deep=True)
            if builtin and isinstance(loader.step, IncrementalLoader):
                context = LoadContext(cache_dir=cache_dir, lineage=lineage)
                loader.step.load_incremental(given, dict(loader.options), dict(info), context)
            else:
                loader.step.load(given, dict(loader.options), dict(info))
        except Exception as error:  # noqa: BLE001 - a failing loader must not stop the others
            load_errors.append(_step_error(pipeline, loader.path, error))
    if load_errors:
        raise EtlDataError("; ".join(str(e) for e in load_errors))


def _transform(
    pipeline: Pipeline,
    spec: StepSpec[Transformer],
    frame: pd.DataFrame,
    lineage: Lineage | None,
    state_file: Path | None,
) -> tuple[pd.DataFrame, Lineage | None]:
    """The step's result and its lineage (None unless the step reports one). An incremental built-in step
    gets the state it returned last time from `state_file`, and its new state is saved there."""
    # Built-in transformers are pure; a custom one gets its own copy so it cannot change what others see.
    builtin = is_builtin(type(spec.step))
    incremental = spec.step if builtin and isinstance(spec.step, IncrementalTransformer) else None
    given = frame if builtin else frame.copy(deep=True)
    try:
        if incremental is not None:
            # Without the input's lineage no previous state can be reused: not worth reading.
            # A state file is signed data (etl.cachecodec): one from elsewhere or edited reads as None.
            previous = cachecodec.load(state_file, _STATE_KIND) if lineage is not None else None
            outcome = incremental.transform_incremental(given, dict(spec.options), lineage, previous)
            if state_file is not None and outcome.state is not None:
                cachecodec.save(state_file, _STATE_KIND, outcome.state)
            result, result_lineage = outcome.frame, outcome.lineage
        else:
            result, result_lineage = spec.step.transform(given, dict(spec.options)), None
    except Exception as error:  # noqa: BLE001
        raise _step_error(pipeline, spec.path, error) from None
    if not isinstance(result, pd.DataFrame):
        raise EtlDataError(
            f"returned {type(result).__name__}, not a DataFrame", pipeline=pipeline.name, step=spec.path
        )
    return result, result_lineage


_STATE_KIND = "transform-state"


def _step_error(pipeline: Pipeline, step: str | None, error: Exception) -> EtlDataError:
    if isinstance(error, EtlDataError):
        return EtlDataError(error.detail, pipeline=error.pipeline or pipeline.name, step=error.step or step)
    return EtlDataError(f"{type(error).__name__}: {error}", pipeline=pipeline.name, step=step)
