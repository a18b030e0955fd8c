#!/bin/sh
# Create every topic of the platform and its `.dlq` twin, with the partitions and configs of the
# topic registry (shared/topics.py). Plain shell, so it runs in the apache/kafka image (the
# `kafka-init` job of docker-compose.yml) or anywhere kafka-topics.sh is. It is idempotent:
# topics that exist already are left as they are (their partitions and configs are the
# operator's), exactly like the services' own `SMM_CREATE_TOPICS=true` path.
#
# Keep the list below in step with TOPICS in shared/topics.py.
#
# Environment (all optional):
#   KAFKA_BOOTSTRAP_SERVERS       broker to talk to                        (default kafka:9092)
#   SMM_TOPIC_PREFIX              prepended to every topic name            (default empty)
#   SMM_TOPIC_PARTITIONS          partitions of a full-size topic          (default 6)
#   SMM_TOPIC_REPLICATION_FACTOR  replication factor of every topic        (default 1)
#   KAFKA_TOPICS                  path of kafka-topics.sh    (default /opt/kafka/bin/kafka-topics.sh)
#   KAFKA_WAIT_SECONDS            how long to wait for the broker to answer (default 120)
set -eu

BOOTSTRAP="${KAFKA_BOOTSTRAP_SERVERS:-kafka:9092}"
PREFIX="${SMM_TOPIC_PREFIX:-}"
PARTITIONS="${SMM_TOPIC_PARTITIONS:-6}"
REPLICATION="${SMM_TOPIC_REPLICATION_FACTOR:-1}"
KAFKA_TOPICS="${KAFKA_TOPICS:-/opt/kafka/bin/kafka-topics.sh}"
WAIT_SECONDS="${KAFKA_WAIT_SECONDS:-120}"

DAY_MS=86400000
DLQ_RETENTION_MS=$((30 * DAY_MS))

case "$PARTITIONS" in '' | *[!0-9]*) echo "SMM_TOPIC_PARTITIONS must be a number" >&2; exit 2 ;; esac
case "$REPLICATION" in '' | *[!0-9]*) echo "SMM_TOPIC_REPLICATION_FACTOR must be a number" >&2; exit 2 ;; esac

# Partitions of the low-volume topics (partition_factor 0.5): max(1, round(PARTITIONS * 0.5))
# with Python's round-half-to-even, so 6 -> 3, 5 -> 2, 3 -> 2, 1 -> 1, as the registry computes.
half=$((PARTITIONS / 2))
if [ $((PARTITIONS % 2)) -eq 1 ] && [ $((half % 2)) -eq 1 ]; then
  half=$((half + 1))
fi
[ "$half" -ge 1 ] || half=1
HALF="$half"

elapsed=0
until "$KAFKA_TOPICS" --bootstrap-server "$BOOTSTRAP" --list >/dev/null 2>&1; do
  if [ "$elapsed" -ge "$WAIT_SECONDS" ]; then
    echo "Kafka at $BOOTSTRAP did not answer within ${WAIT_SECONDS}s" >&2
    exit 1
  fi
  echo "waiting for Kafka at $BOOTSTRAP ..."
  sleep 5
  elapsed=$((elapsed + 5))
done

# create NAME PARTITIONS CONFIG...   (each CONFIG is key=value)
create() {
  name="$PREFIX$1"
  partitions="$2"
  shift 2
  set -- --bootstrap-server "$BOOTSTRAP" --create --if-not-exists --topic "$name" \
    --partitions "$partitions" --replication-factor "$REPLICATION" "$@"
  "$KAFKA_TOPICS" "$@"
}

# topic NAME PARTITIONS RETENTION_DAYS: a deleting topic and its DLQ twin.
topic() {
  create "$1" "$2" --config cleanup.policy=delete --config "retention.ms=$(($3 * DAY_MS))"
  dlq "$1"
}

# compacted NAME PARTITIONS: a compacted topic (latest value per key) and its DLQ twin.
compacted() {
  create "$1" "$2" --config cleanup.policy=compact --config min.compaction.lag.ms=3600000
  dlq "$1"
}

# dlq NAME: the dead letters of NAME, one partition, kept 30 days.
dlq() {
  create "$1.dlq" 1 --config cleanup.policy=delete --config "retention.ms=$DLQ_RETENTION_MS"
}

echo "creating topics on $BOOTSTRAP (prefix '${PREFIX}', partitions ${PARTITIONS}/${HALF}, replication ${REPLICATION})"

#        name                          partitions     retention (days)
topic     smm.mentions.raw.v1           "$PARTITIONS"  7
topic     smm.mentions.classified.v1    "$PARTITIONS"  30
topic     smm.moderation.decisions.v1   "$PARTITIONS"  30
topic     smm.posts.commands.v1         "$HALF"        30
topic     smm.posts.events.v1           "$HALF"        30
topic     smm.engagement.v1             "$PARTITIONS"  30
compacted smm.kpi.v1                    "$HALF"
topic     smm.alerts.v1                 "$HALF"        90

echo "topics ready"
