"""Reads `ccetl plan --json` on stdin; prints the pools it names in the JSON form
`airflow pools import` takes: one pool per API budget, with the slots ccetl gives it."""

import json
import sys

pools = {}
for shard in json.load(sys.stdin):
    pools[shard["pool"]] = {
        "slots": shard["pool_slots"],
        "description": f"ccetl: API budget of {shard['kind']} source(s)",
        "include_deferred": False,
    }
json.dump(pools, sys.stdout, indent=2)
