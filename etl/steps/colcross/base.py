"""What every colcross configuration shares: a JMESPath `jp_query` that selects the figures, subplots or
artists an entry of a cumulative list applies to, and the merge of those entries (earlier entries win)."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict


class ConfigModel(BaseModel):
    """Options of a step's configuration: unknown keys are errors, enums hold their values."""

    model_config = ConfigDict(extra="forbid", use_enum_values=True)


class ColcrossConfigError(ValueError):
    """A configuration that does not fit the data (a query that is no condition, a label naming no id)."""


def is_match(jp_query: str | None, data_id: dict[str, Any], info: str) -> bool:
    """Whether the JMESPath condition holds for the id (column -> value) of a figure, subplot or artist;
    no query matches everything. `info` names the option in the error for a query that is no condition."""
    if jp_query is None:
        return True
    import jmespath

    try:
        result = jmespath.search(jp_query, data_id)
    except jmespath.exceptions.JMESPathError as error:
        raise ColcrossConfigError(f"{info}: jp_query {jp_query!r} is invalid: {error}") from None
    if not isinstance(result, bool):
        raise ColcrossConfigError(
            f"{info}: jp_query {jp_query!r} gives {result!r}, not true or false, for {data_id}"
        )
    return result


_Queried = TypeVar("_Queried", "BasePlotConfig", "BaseSubplotConfig")


def merged(configs: Sequence[_Queried], data_id: dict[str, Any], info: str) -> _Queried | None:
    """One configuration from the entries whose `jp_query` matches: a field comes from the first of them that
    sets it (is not None). None if no entry matches."""
    matching = [config for config in configs if is_match(config.jp_query, data_id, info)]
    if not matching:
        return None
    first = matching[0]
    update = {}
    for name in type(first).model_fields:
        if getattr(first, name) is None:
            value = next(
                (getattr(c, name, None) for c in matching[1:] if getattr(c, name, None) is not None), None
            )
            if value is not None:
                update[name] = value
    return first.model_copy(update=update)


class BasePlotConfig(ConfigModel, abc.ABC):
    """A figure's configuration, one entry of `cum_plot_config`."""

    jp_query: str | None = None

    @classmethod
    def merge_cumulative(cls, configs: Sequence, plot_id: dict, info: str = "plot_config"):
        return merged(configs, plot_id, info)


class BaseSubplotConfig(ConfigModel, abc.ABC):
    """A subplot's configuration, one entry of `cum_subplot_config`."""

    jp_query: str | None = None

    @classmethod
    def merge_cumulative(cls, configs: Sequence, data_id: dict, info: str = "subplot_config"):
        return merged(configs, data_id, info)

    @abc.abstractmethod
    def get_cols(self) -> list[str]:
        """The columns the subplot's chart groups by."""

    @abc.abstractmethod
    def artist_config(self, artist_id: dict, plot_config) -> dict:
        """The keyword arguments of one artist (bar part, box)."""

    @abc.abstractmethod
    def create_chart(self, ax, df1, data_id: dict, metric, plot_config) -> None:
        """Draw the chart into `ax`."""

    def label(self, lbl: Any, data_id: dict) -> Any:
        """The text shown for a data value."""
        return lbl
