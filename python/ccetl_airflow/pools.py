"""`ccetl describe PIPELINE --json | python -m ccetl_airflow.pools > pools.json`: the Airflow
pools of a pipeline's API budgets, for `airflow pools import pools.json`."""

from __future__ import annotations

import json
import sys


def main() -> None:
    described = json.load(sys.stdin)
    pools = {}
    for s in described["sources"]:
        p = pools.setdefault(
            s["pool"], {"slots": s["pool_slots"], "description": "", "include_deferred": False}
        )
        names = p["description"].removeprefix("ccetl: ").split(", ") if p["description"] else []
        names.append(s["source"])
        p["description"] = "ccetl: " + ", ".join(names)
    json.dump(pools, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
