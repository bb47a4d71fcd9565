"""doe-suite's `doespy.design.etl_design`: the base model of its ETL configuration classes."""

from pydantic import BaseModel, ConfigDict


class MyETLBaseModel(BaseModel):
    """Unknown options are errors; enum fields hold their values (doe-suite's settings for step configs)."""

    model_config = ConfigDict(extra="forbid", use_enum_values=True)
