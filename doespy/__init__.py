"""doe-suite's `doespy` API as doe provides it: the modules that doe-suite projects' custom ETL steps import
(`doespy.etl.steps.*`, `doespy.etl.etl_util`, `doespy.design.etl_design`, `doespy.util`), backed by doe's
own ETL package."""
