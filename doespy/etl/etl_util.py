"""doe-suite's `doespy.etl.etl_util`: helpers that custom steps use."""

from __future__ import annotations

import json
import os
import urllib.parse
import urllib.request
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from etl.steps.colcross.colcross import escape_dict_str  # noqa: F401  (doe-suite offers it here)
from etl.steps.transformers import FACTORS_MARKER, factor_columns_of

if TYPE_CHECKING:
    import pandas as pd

NOTION_API = "https://api.notion.com/v1"
NOTION_VERSION = "2022-06-28"
PLOTS_BUCKET = "doe-suite-plots"
PLOTS_BUCKET_REGION = "eu-central-1"


def expand_factors(df: pd.DataFrame, columns: list) -> list:
    """`columns` with the `$FACTORS$` entry replaced by the factor columns of all rows (their union, from the
    `factor_columns` column); without the marker, `columns` as given. A column named twice is an error."""
    if FACTORS_MARKER not in columns:
        return columns
    at = columns.index(FACTORS_MARKER)
    expanded = [*columns[:at], *factor_columns_of(df), *columns[at + 1 :]]
    if len(expanded) != len(set(expanded)):
        raise ValueError(
            f"{expanded} names a column twice: a column next to $FACTORS$ is also one of the factors"
        )
    return expanded


def escape_tuple_str(tup) -> str:
    """A group key as a file-name part: the items joined by `_`, without dots; a single value as str."""
    if isinstance(tup, str) or not isinstance(tup, Iterable):
        return str(tup)
    return "_".join(str(item) for item in tup).replace(".", "")


def save_notion(filenames: list[str], etl_info: dict, notion_dict: dict) -> None:
    """Show plots on a Notion page: upload `<etl_output_dir>/<name>.png` of each name to the S3 bucket
    doe-suite-plots (under `<project>/super_etl/<suite>/<pipeline>/<time>/`), then replace the children of
    the Notion block `notion_dict["block_id"]` by one embed per upload. Needs AWS credentials and
    $NOTION_API_KEY."""
    urls = _upload_plots(filenames, etl_info, notion_dict["project"])
    headers = {
        "Authorization": f"Bearer {os.environ['NOTION_API_KEY']}",
        "Content-Type": "application/json",
        "Notion-Version": NOTION_VERSION,
    }
    children_url = f"{NOTION_API}/blocks/{notion_dict['block_id']}/children"
    for child in _notion_request("GET", children_url, headers)["results"]:
        _notion_request("DELETE", f"{NOTION_API}/blocks/{child['id']}", headers)
    for url in urls:
        block = {"object": "block", "type": "embed", "embed": {"url": url}}
        _notion_request("PATCH", children_url, headers, {"children": [block]})


def _upload_plots(filenames: list[str], etl_info: dict, project: str) -> list[str]:
    import boto3

    bucket = boto3.resource("s3").Bucket(PLOTS_BUCKET)
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    prefix = f"{project}/super_etl/{etl_info['suite']}/{etl_info['pipeline']}/{stamp}"
    urls = []
    for name in filenames:
        key = f"{prefix}/{name}.png"
        with open(os.path.join(etl_info["etl_output_dir"], f"{name}.png"), "rb") as handle:
            bucket.put_object(Key=key, Body=handle)
        urls.append(f"https://{PLOTS_BUCKET}.s3.{PLOTS_BUCKET_REGION}.amazonaws.com/{urllib.parse.quote(key)}")
    return urls


def _notion_request(method: str, url: str, headers: dict, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"{}")
