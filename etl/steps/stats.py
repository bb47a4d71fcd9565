"""Statistics transformers (confidence intervals, outliers)."""
