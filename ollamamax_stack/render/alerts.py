"""`render alerts`: Prometheus alerting rules for the stack's services and its Ollama nodes.

The metric names are the ones the services export (`services/common/metrics.py`,
`services/inference/metrics.py`); the `service` label is the one `render prometheus` gives
every scraped job.
"""

from __future__ import annotations

import yaml

from ollamamax_stack.registry.model import Registry
from ollamamax_stack.render.base import Rendering, header
from ollamamax_stack.render.prometheus import scraped

FILE = "alerts.yml"
POOL_SERVICE = "inference"  # the service whose pool checks the nodes (the front ends follow it)
DOWN_FOR = "1m"
RESTARTS = 3                # starts of one worker within RESTART_WINDOW: a restart loop
RESTART_WINDOW = "10m"
ERROR_RATIO = 0.05          # 5xx answers over all answers, over ERROR_WINDOW
ERROR_WINDOW = "5m"


def services_matcher(registry: Registry) -> str:
    """`service=~"gateway|hub|..."`: the scraped services of the registry."""
    return f'service=~"{"|".join(s.name for s in scraped(registry))}"'


def alert_rules(registry: Registry) -> list[dict[str, object]]:
    """The rules of the `ollamamax` group."""
    services = services_matcher(registry)
    pool = f'service="{POOL_SERVICE}"'
    return [
        {"alert": "OllamamaxServiceDown", "expr": f"up{{{services}}} == 0", "for": DOWN_FOR,
         "labels": {"severity": "critical"},
         "annotations": {"summary": "{{ $labels.service }} does not answer its /metrics "
                                    "({{ $labels.instance }})"}},
        {"alert": "OllamamaxRestartLoop",
         "expr": f"changes(ollamamax_process_start_time_seconds{{{services}}}"
                 f"[{RESTART_WINDOW}]) >= {RESTARTS}",
         "labels": {"severity": "warning"},
         "annotations": {"summary": "{{ $labels.worker }} started {{ $value }} more times in "
                                    f"{RESTART_WINDOW}"}},
        {"alert": "OllamamaxErrorRatio",
         "expr": f'sum by (service) (rate(http_requests_total{{{services},status=~"5.."}}'
                 f"[{ERROR_WINDOW}])) / sum by (service) (rate(http_requests_total"
                 f"{{{services}}}[{ERROR_WINDOW}])) > {ERROR_RATIO}",
         "for": ERROR_WINDOW, "labels": {"severity": "warning"},
         "annotations": {"summary": "{{ $labels.service }} answers "
                                    "{{ $value | humanizePercentage }} of its requests "
                                    "with a 5xx"}},
        {"alert": "OllamamaxNodeDown", "expr": f"ollamamax_node_up{{{pool}}} == 0",
         "for": DOWN_FOR, "labels": {"severity": "warning"},
         "annotations": {"summary": "Ollama node {{ $labels.node }} ({{ $labels.url }}) fails "
                                    "its health checks"}},
        {"alert": "OllamamaxNoHealthyNodeForModel",
         "expr": f"ollamamax_model_healthy_nodes{{{pool}}} == 0", "for": DOWN_FOR,
         "labels": {"severity": "critical"},
         "annotations": {"summary": "no healthy node serves {{ $labels.model }}"}},
    ]


def render_alerts(registry: Registry) -> Rendering:
    """alerts.yml: one rule group, for Prometheus's `rule_files`."""
    document = {"groups": [{"name": registry.stack.name, "rules": alert_rules(registry)}]}
    return {FILE: header("alerts", registry.source) + "\n" + yaml.safe_dump(
        document, sort_keys=False, default_flow_style=False, width=1000)}
