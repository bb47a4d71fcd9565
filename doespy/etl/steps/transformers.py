"""doe-suite's `doespy.etl.steps.transformers`: the transformer base class and the built-in transformers."""

from etl.steps.base import Transformer
from etl.steps.stats import ConfidenceIntervalTransformer, OutlierTransformer
from etl.steps.transformers import (
    ConditionalTransformer,
    FilterColumnTransformer,
    GroupByAggTransformer,
    RepAggTransformer,
)

__all__ = [
    "ConditionalTransformer",
    "ConfidenceIntervalTransformer",
    "FilterColumnTransformer",
    "GroupByAggTransformer",
    "OutlierTransformer",
    "RepAggTransformer",
    "Transformer",
]
