#!/bin/sh
# Create the two Secrets the manifests refer to, with fresh random values, in NAMESPACE:
#   smm-mongodb  root-username, root-password, app-password, keyfile   (MongoDB StatefulSet, Job)
#   smm-secrets  SMM_ADMIN_TOKEN, SMM_TOKEN_FINGERPRINT_KEY, SMM_MONGODB_URI, SMM_ACTOR_SIGNING_KEY,
#                SMM_CONSOLE_SERVICE_TOKEN, SMM_API_TOKENS                (the services)
# SMM_API_TOKENS holds the console's token (user `console`, `act_as` and the scopes its users'
# roles may have), so the four services accept it; every service verifies the console's user
# assertions with SMM_ACTOR_SIGNING_KEY. The console reads only its three keys of smm-secrets.
# A Secret that exists already is left alone (changing MongoDB's root password or key file
# under a running replica set would lock it out). Nothing is printed but the names.
#
#   deploy/k8s/create-secrets.sh NAMESPACE [MONGODB_MEMBERS]
#
# MONGODB_MEMBERS is the replica-set size (3 for overlays/prod, 1 for overlays/dev; default 3).
# In production you may create the same Secrets from your secret manager instead (External
# Secrets, Sealed Secrets, Vault); keep the names and keys. Add more SMM_* secrets (platform
# app secrets, more SMM_API_TOKENS next to the console's) to smm-secrets with
# `kubectl edit secret smm-secrets`.
set -eu

if [ $# -lt 1 ]; then
  echo "usage: $0 NAMESPACE [MONGODB_MEMBERS]" >&2
  exit 2
fi
NAMESPACE="$1"
MEMBERS="${2:-3}"
case "$MEMBERS" in '' | *[!0-9]*) echo "MONGODB_MEMBERS must be a number" >&2; exit 2 ;; esac
KUBECTL="${KUBECTL:-kubectl}"

random_hex() {
  openssl rand -hex "$1"
}

exists() {
  "$KUBECTL" -n "$NAMESPACE" get secret "$1" >/dev/null 2>&1
}

if exists smm-mongodb; then
  echo "secret smm-mongodb exists in $NAMESPACE: left as it is"
  APP_PASSWORD=$("$KUBECTL" -n "$NAMESPACE" get secret smm-mongodb \
    -o jsonpath='{.data.app-password}' | base64 -d)
else
  APP_PASSWORD=$(random_hex 24)
  keyfile=$(mktemp)
  trap 'rm -f "$keyfile"' EXIT
  openssl rand -base64 756 >"$keyfile"
  "$KUBECTL" -n "$NAMESPACE" create secret generic smm-mongodb \
    --from-literal=root-username=root \
    --from-literal=root-password="$(random_hex 24)" \
    --from-literal=app-password="$APP_PASSWORD" \
    --from-file=keyfile="$keyfile" >/dev/null
  echo "created secret smm-mongodb in $NAMESPACE"
fi

if exists smm-secrets; then
  echo "secret smm-secrets exists in $NAMESPACE: left as it is"
else
  hosts=""
  i=0
  while [ "$i" -lt "$MEMBERS" ]; do
    hosts="${hosts:+$hosts,}smm-mongodb-$i.smm-mongodb:27017"
    i=$((i + 1))
  done
  CONSOLE_TOKEN=$(random_hex 32)
  CONSOLE_SCOPES='"act_as", "read", "review:write", "posts:write", "posts:approve", "trackers:write", "rules:write", "channels:write"'
  "$KUBECTL" -n "$NAMESPACE" create secret generic smm-secrets \
    --from-literal=SMM_ADMIN_TOKEN="$(random_hex 32)" \
    --from-literal=SMM_TOKEN_FINGERPRINT_KEY="$(random_hex 32)" \
    --from-literal=SMM_MONGODB_URI="mongodb://smm:$APP_PASSWORD@$hosts/smm?replicaSet=rs0&authSource=smm" \
    --from-literal=SMM_ACTOR_SIGNING_KEY="$(random_hex 32)" \
    --from-literal=SMM_CONSOLE_SERVICE_TOKEN="$CONSOLE_TOKEN" \
    --from-literal=SMM_API_TOKENS="{\"$CONSOLE_TOKEN\": {\"user\": \"console\", \"scopes\": [$CONSOLE_SCOPES]}}" \
    >/dev/null
  echo "created secret smm-secrets in $NAMESPACE (admin token: kubectl -n $NAMESPACE get secret smm-secrets -o jsonpath='{.data.SMM_ADMIN_TOKEN}' | base64 -d)"
fi
