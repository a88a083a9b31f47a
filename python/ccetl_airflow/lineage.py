"""OpenLineage facets of a ccetl run, from `ccetl describe` and the run's report.

Naming follows OpenLineage's dataset conventions: an API endpoint is a dataset in the
namespace of its base URL; a table in object storage is `s3://bucket` + its path, a local
one `file` + its absolute path.
"""

from __future__ import annotations

from urllib.parse import urlparse

from ccetl_airflow.hooks import warehouse_uri


def table_dataset_name(warehouse: str, table: str, pipeline: str | None) -> tuple[str, str]:
    """(namespace, name) of a warehouse table."""
    uri = urlparse(f"{warehouse_uri(warehouse, pipeline)}/{table}")
    if uri.scheme == "file":
        return "file", uri.path
    return f"{uri.scheme}://{uri.netloc}", uri.path.lstrip("/")


def lineage_of(described: dict | None, report: dict | None, pipeline: str | None):
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.generated.base import InputDataset, OutputDataset
    from openlineage.client.generated.dataset_version_dataset import DatasetVersionDatasetFacet
    from openlineage.client.generated.output_statistics_output_dataset import (
        OutputStatisticsOutputDatasetFacet,
    )

    if not described or not report:
        return OperatorLineage()
    by_name = {s["source"]: s for s in described["sources"]}
    inputs, outputs = [], []
    rows: dict[str, int] = {}
    versions: dict[str, int] = {}
    for sr in report.get("sources", []):
        src = by_name.get(sr["name"])
        if src and src.get("api"):
            inputs += [InputDataset(namespace=src["api"], name=e) for e in src["reads"]]
        for w in sr.get("windows", []):
            for t, n in (w.get("table_rows") or {}).items():
                rows[t] = rows.get(t, 0) + n
            for t, v in (w.get("table_versions") or {}).items():
                versions[t] = max(versions.get(t, 0), v)
    for table in sorted(rows):
        namespace, name = table_dataset_name(described["warehouse"], table, pipeline)
        facets = {}
        if table in versions:
            facets["version"] = DatasetVersionDatasetFacet(datasetVersion=str(versions[table]))
        outputs.append(
            OutputDataset(
                namespace=namespace,
                name=name,
                facets=facets,
                outputFacets={"outputStatistics": OutputStatisticsOutputDatasetFacet(rowCount=rows[table])},
            )
        )
    return OperatorLineage(inputs=inputs, outputs=outputs)
