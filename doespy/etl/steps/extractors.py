"""doe-suite's `doespy.etl.steps.extractors`: the extractor base class and the built-in extractors."""

from etl.steps.base import Extractor
from etl.steps.extractors import (
    CsvExtractor,
    ErrorExtractor,
    IgnoreExtractor,
    JsonExtractor,
    RuntimeInfoExtractor,
    YamlExtractor,
)

__all__ = [
    "CsvExtractor",
    "ErrorExtractor",
    "Extractor",
    "IgnoreExtractor",
    "JsonExtractor",
    "RuntimeInfoExtractor",
    "YamlExtractor",
]
