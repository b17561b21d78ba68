"""Parses Prometheus text exposition from stdin with the Prometheus project's own
Python parser (PyPI `prometheus_client`), independently of keygate's encoder, and prints
the families as JSON: [{"name", "type", "samples": [{"name", "labels", "value"}]}].
A text the parser refuses exits non-zero with its error."""

import json
import math
import sys

from prometheus_client.parser import text_string_to_metric_families


def value(v):
    return v if math.isfinite(v) else str(v)


families = [
    {
        "name": f.name,
        "type": f.type,
        "help": f.documentation,
        "samples": [
            {"name": s.name, "labels": dict(s.labels), "value": value(s.value)}
            for s in f.samples
        ],
    }
    for f in text_string_to_metric_families(sys.stdin.read())
]
json.dump(families, sys.stdout)
