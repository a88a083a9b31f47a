"""ccetl's Airflow provider: operators that run the `ccetl` binary installed with this
package, a task group that plans a backfill and runs its shards in their pools, OpenLineage
facets, and Airflow assets for the warehouse's tables."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = [
    "CcetlFinalizeOperator",
    "CcetlHook",
    "CcetlRunOperator",
    "backfill_tasks",
    "get_provider_info",
    "nightly_tasks",
    "table_asset",
]


def get_provider_info() -> dict:
    """What Airflow's provider manager lists (`airflow providers list`)."""
    return {
        "package-name": "ccetl",
        "name": "ccetl",
        "description": "Contact-center call data into a warehouse: run ccetl from Airflow.",
        "versions": [__version__],
        "connection-types": [
            {
                "connection-type": "ccetl",
                "hook-class-name": "ccetl_airflow.hooks.CcetlHook",
            }
        ],
    }


def __getattr__(name: str):
    # Lazy: `get_provider_info` must import without Airflow's task SDK loaded.
    if name in ("CcetlHook", "table_asset"):
        from ccetl_airflow import hooks

        return getattr(hooks, name)
    if name in ("CcetlRunOperator", "CcetlFinalizeOperator"):
        from ccetl_airflow import operators

        return getattr(operators, name)
    if name in ("backfill_tasks", "nightly_tasks"):
        from ccetl_airflow import groups

        return getattr(groups, name)
    raise AttributeError(name)
