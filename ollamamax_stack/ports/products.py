"""Server products an image names: evidence of what runs in a compose service.

A compose name the registry states (`compose_names`) yields only to an image that says the
service is something else: another registered service's image, or one of these products.
An image nobody claims (`ollamamax/api`, a project's own build) says nothing against a name.
"""

from __future__ import annotations

# Image names (last path component, no tag) of servers that commonly sit beside a stack.
KNOWN_PRODUCTS = frozenset({
    "cassandra", "clickhouse", "cockroach", "consul", "couchdb", "elasticsearch", "etcd",
    "grafana", "influxdb", "kafka", "keycloak", "mariadb", "memcached", "minio", "mongo",
    "mssql", "mysql", "nats", "neo4j", "nginx", "opensearch", "percona", "postgis",
    "postgres", "postgresql", "prometheus", "rabbitmq", "redis", "redpanda", "traefik",
    "valkey", "vault", "zookeeper",
})


def products_in(image_last: str) -> frozenset[str]:
    """The known products an image's last name component names (`redismod` -> redis)."""
    return frozenset(p for p in KNOWN_PRODUCTS if p in image_last)
