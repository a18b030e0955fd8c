"""Minimal JSON Schemas of the custom resources the manifests use (Strimzi, KEDA,
prometheus-operator).

Written here from the operators' API references, not copied from their CRDs (the full CRDs are
megabytes and cannot be fetched at test time). They cover what the manifests rely on: required
fields, types, enumerations, and closed field sets where a misspelt field would be silently
ignored by the operator (KafkaTopic, KafkaNodePool, ScaledObject, triggers).
"""

from __future__ import annotations

from typing import Any

_NAME = {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 253}
_LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
_METADATA: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": _NAME, "namespace": _NAME, "labels": _LABELS, "annotations": _LABELS},
}
_QUANTITY = {"type": ["string", "integer", "number"]}
_RESOURCES = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "requests": {"type": "object", "additionalProperties": _QUANTITY},
        "limits": {"type": "object", "additionalProperties": _QUANTITY},
    },
}
_CONFIG_VALUE = {"type": ["string", "integer", "number", "boolean"]}
_PERSISTENT_CLAIM = {
    "type": "object",
    "required": ["type", "size"],
    "properties": {
        "type": {"const": "persistent-claim"},
        "id": {"type": "integer", "minimum": 0},
        "size": {"type": "string", "pattern": r"^[0-9]+(Mi|Gi|Ti)$"},
        "class": {"type": "string"},
        "deleteClaim": {"type": "boolean"},
        "kraftMetadata": {"enum": ["shared"]},
    },
    "additionalProperties": False,
}


def _resource(api_version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            "metadata": _METADATA,
            "spec": spec,
        },
    }


_STRIMZI_CLUSTER_LABEL = {
    "type": "object",
    "required": ["labels"],
    "properties": {"labels": {"required": ["strimzi.io/cluster"]}},
}

KAFKA = _resource(
    "kafka.strimzi.io/v1",
    "Kafka",
    {
        "type": "object",
        "required": ["kafka"],
        "properties": {
            "kafka": {
                "type": "object",
                "required": ["listeners"],
                "not": {"anyOf": [{"required": ["replicas"]}, {"required": ["storage"]}]},
                "properties": {
                    "version": {"type": "string", "pattern": r"^\d+\.\d+\.\d+$"},
                    "listeners": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["name", "port", "type", "tls"],
                            "properties": {
                                "name": {"type": "string", "pattern": "^[a-z0-9]{1,11}$"},
                                "port": {"type": "integer", "minimum": 9092},
                                "type": {
                                    "enum": [
                                        "internal",
                                        "route",
                                        "loadbalancer",
                                        "nodeport",
                                        "ingress",
                                        "cluster-ip",
                                    ]
                                },
                                "tls": {"type": "boolean"},
                                "authentication": {
                                    "type": "object",
                                    "required": ["type"],
                                    "properties": {
                                        "type": {
                                            "enum": ["tls", "scram-sha-512", "oauth", "custom"]
                                        }
                                    },
                                },
                                "networkPolicyPeers": {"type": "array"},
                            },
                        },
                    },
                    "authorization": {
                        "type": "object",
                        "required": ["type"],
                        "properties": {"type": {"enum": ["simple", "opa", "keycloak", "custom"]}},
                    },
                    "config": {"type": "object", "additionalProperties": _CONFIG_VALUE},
                },
            },
            "kafkaExporter": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "topicRegex": {"type": "string"},
                    "groupRegex": {"type": "string"},
                    "resources": _RESOURCES,
                    "logging": {"type": "string"},
                    "enableSaramaLogging": {"type": "boolean"},
                    "template": {"type": "object"},
                },
            },
            "entityOperator": {
                "type": "object",
                "properties": {
                    "topicOperator": {"type": "object"},
                    "userOperator": {"type": "object"},
                },
            },
        },
    },
)
KAFKA["properties"]["metadata"] = {
    **_METADATA,
    "properties": {
        **_METADATA["properties"],
        "name": {"type": "string", "pattern": "^[a-z][-a-z0-9]*$"},
    },
}

KAFKA_NODE_POOL = _resource(
    "kafka.strimzi.io/v1",
    "KafkaNodePool",
    {
        "type": "object",
        "required": ["replicas", "roles", "storage"],
        "additionalProperties": False,
        "properties": {
            "replicas": {"type": "integer", "minimum": 0},
            "roles": {
                "type": "array",
                "minItems": 1,
                "uniqueItems": True,
                "items": {"enum": ["controller", "broker"]},
            },
            "storage": {
                "oneOf": [
                    _PERSISTENT_CLAIM,
                    {
                        "type": "object",
                        "required": ["type", "volumes"],
                        "additionalProperties": False,
                        "properties": {
                            "type": {"const": "jbod"},
                            "volumes": {"type": "array", "minItems": 1, "items": _PERSISTENT_CLAIM},
                        },
                    },
                ]
            },
            "resources": _RESOURCES,
            "jvmOptions": {"type": "object"},
            "template": {"type": "object"},
        },
    },
)
KAFKA_NODE_POOL["properties"]["metadata"] = {**_METADATA, **_STRIMZI_CLUSTER_LABEL}

KAFKA_TOPIC = _resource(
    "kafka.strimzi.io/v1",
    "KafkaTopic",
    {
        "type": "object",
        "required": ["partitions", "replicas"],
        "additionalProperties": False,
        "properties": {
            "topicName": {"type": "string", "pattern": r"^[a-zA-Z0-9._-]{1,249}$"},
            "partitions": {"type": "integer", "minimum": 1},
            "replicas": {"type": "integer", "minimum": 1, "maximum": 32767},
            "config": {"type": "object", "additionalProperties": _CONFIG_VALUE},
        },
    },
)
KAFKA_TOPIC["properties"]["metadata"] = {**_METADATA, **_STRIMZI_CLUSTER_LABEL}

KAFKA_USER = _resource(
    "kafka.strimzi.io/v1",
    "KafkaUser",
    {
        "type": "object",
        "properties": {
            "authentication": {
                "type": "object",
                "required": ["type"],
                "properties": {"type": {"enum": ["tls", "tls-external", "scram-sha-512"]}},
            },
            "authorization": {
                "type": "object",
                "required": ["type", "acls"],
                "properties": {
                    "type": {"const": "simple"},
                    "acls": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["resource", "operations"],
                            "additionalProperties": False,
                            "properties": {
                                "resource": {
                                    "type": "object",
                                    "required": ["type"],
                                    "properties": {
                                        "type": {
                                            "enum": ["topic", "group", "cluster", "transactionalId"]
                                        },
                                        "name": {"type": "string"},
                                        "patternType": {"enum": ["literal", "prefix"]},
                                    },
                                },
                                "operations": {
                                    "type": "array",
                                    "minItems": 1,
                                    "items": {
                                        "enum": [
                                            "Read",
                                            "Write",
                                            "Create",
                                            "Delete",
                                            "Alter",
                                            "Describe",
                                            "ClusterAction",
                                            "AlterConfigs",
                                            "DescribeConfigs",
                                            "IdempotentWrite",
                                            "All",
                                        ]
                                    },
                                },
                                "host": {"type": "string"},
                                "type": {"enum": ["allow", "deny"]},
                            },
                        },
                    },
                },
            },
        },
    },
)
KAFKA_USER["properties"]["metadata"] = {**_METADATA, **_STRIMZI_CLUSTER_LABEL}

_TRIGGER = {
    "type": "object",
    "required": ["type", "metadata"],
    "additionalProperties": False,
    "properties": {
        "type": {"type": "string"},
        "name": {"type": "string"},
        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        "authenticationRef": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "kind": {"enum": ["TriggerAuthentication", "ClusterTriggerAuthentication"]},
            },
        },
        "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
        "useCachedMetrics": {"type": "boolean"},
    },
}

SCALED_OBJECT = _resource(
    "keda.sh/v1alpha1",
    "ScaledObject",
    {
        "type": "object",
        "required": ["scaleTargetRef", "triggers"],
        "additionalProperties": False,
        "properties": {
            "scaleTargetRef": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string"},
                    "kind": {"type": "string"},
                    "apiVersion": {"type": "string"},
                },
            },
            "pollingInterval": {"type": "integer", "minimum": 1},
            "cooldownPeriod": {"type": "integer", "minimum": 0},
            "initialCooldownPeriod": {"type": "integer", "minimum": 0},
            "idleReplicaCount": {"type": "integer", "minimum": 0},
            "minReplicaCount": {"type": "integer", "minimum": 0},
            "maxReplicaCount": {"type": "integer", "minimum": 1},
            "advanced": {"type": "object"},
            "fallback": {"type": "object"},
            "triggers": {"type": "array", "minItems": 1, "items": _TRIGGER},
        },
    },
)

TRIGGER_AUTHENTICATION = _resource(
    "keda.sh/v1alpha1",
    "TriggerAuthentication",
    {
        "type": "object",
        "properties": {
            "secretTargetRef": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["parameter", "name", "key"],
                    "additionalProperties": False,
                    "properties": {
                        "parameter": {"type": "string"},
                        "name": {"type": "string"},
                        "key": {"type": "string"},
                    },
                },
            }
        },
    },
)

SERVICE_MONITOR = _resource(
    "monitoring.coreos.com/v1",
    "ServiceMonitor",
    {
        "type": "object",
        "required": ["selector", "endpoints"],
        "properties": {
            "selector": {"type": "object"},
            "endpoints": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "properties": {
                        "port": {"type": "string"},
                        "path": {"type": "string", "pattern": "^/"},
                        "interval": {"type": "string", "pattern": r"^\d+(ms|s|m|h)$"},
                        "scrapeTimeout": {"type": "string", "pattern": r"^\d+(ms|s|m|h)$"},
                        "relabelings": {"type": "array"},
                    },
                },
            },
        },
    },
)

POD_MONITOR = _resource(
    "monitoring.coreos.com/v1",
    "PodMonitor",
    {
        "type": "object",
        "required": ["selector", "podMetricsEndpoints"],
        "properties": {
            "selector": {"type": "object"},
            "podMetricsEndpoints": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "properties": {
                        "port": {"type": "string"},
                        "path": {"type": "string", "pattern": "^/"},
                        "interval": {"type": "string", "pattern": r"^\d+(ms|s|m|h)$"},
                    },
                },
            },
        },
    },
)

PROMETHEUS_RULE = _resource(
    "monitoring.coreos.com/v1",
    "PrometheusRule",
    {
        "type": "object",
        "required": ["groups"],
        "properties": {
            "groups": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "rules"],
                    "properties": {
                        "name": {"type": "string", "minLength": 1},
                        "rules": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["expr"],
                                "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
                            },
                        },
                    },
                },
            }
        },
    },
)

#: Schema of every custom resource kind the manifests may contain.
CUSTOM_RESOURCES: dict[str, dict[str, Any]] = {
    "Kafka": KAFKA,
    "KafkaNodePool": KAFKA_NODE_POOL,
    "KafkaTopic": KAFKA_TOPIC,
    "KafkaUser": KAFKA_USER,
    "ScaledObject": SCALED_OBJECT,
    "TriggerAuthentication": TRIGGER_AUTHENTICATION,
    "ServiceMonitor": SERVICE_MONITOR,
    "PodMonitor": POD_MONITOR,
    "PrometheusRule": PROMETHEUS_RULE,
}
