"""doe's ETL: extract job results into rows, transform them with pandas, load them as tables and plots.

This package only reads a results tree and its design; it never imports doe_cli.

    from etl.design_section import expand_etl_section   # `$ETL$` of suite_design.yml, validated
    from etl.api import run_suite_etl, run_super_etl, run_all_etl, clean_suite_etl

Steps are pydantic models (frozen, unknown options rejected) registered by class name: subclass
`etl.steps.base.Extractor` (`extract(path, options) -> list[dict]`), `Transformer`
(`transform(df, options) -> DataFrame`, never mutating `df`) or `Loader` (`load(df, options, etl_info)`,
writing below `self.get_output_dir(etl_info)`) in the config dir's `does_etl_custom` package.
"""
