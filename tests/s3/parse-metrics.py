"""Reads a Prometheus text exposition on stdin with the reference parser
(prometheus_client.parser.text_string_to_metric_families) and prints every sample as one
JSON line: {"family", "type", "name", "labels", "value"}. A malformed exposition makes the
parser raise, and this script exit non-zero."""

import json
import sys

from prometheus_client.parser import text_string_to_metric_families

for family in text_string_to_metric_families(sys.stdin.read()):
    for sample in family.samples:
        print(json.dumps({
            "family": family.name,
            "type": family.type,
            "name": sample.name,
            "labels": sample.labels,
            "value": sample.value,
        }))
