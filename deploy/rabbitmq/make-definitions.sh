#!/usr/bin/env bash
# RabbitMQ definitions (users, vhost, permissions, topology) for Identity's message bus.
#
#   deploy/rabbitmq/make-definitions.sh [REGION...] > definitions.json   # regions default to: eu us au
#
# Users authenticate with SASL EXTERNAL (their certificate's CN), so they have no password: an empty
# password hash, and no tags (no management or policy rights).
#
# Topology, per region r: a durable fanout exchange identity.region.<r> bound to a quorum queue of the
# same name (replicated across a cluster's nodes; docs/operations.md says how to move a classic queue).
# Identity sends each region's events to its exchange; the region consumes its queue.
#
# Permissions (configure / write / read regexes, all on vhost /):
#   identity    configure + write ^identity\.region\.[a-z0-9-]+$, read nothing.
#               MassTransit redeclares the exchange it sends to (idempotent, but it needs "configure":
#               without it the send fails with access_refused on exchange.declare) and publishes to it
#               ("write"). Sending creates no queue (checked: MassTransit 8 declared no temporary bus
#               queue), so no read right: identity cannot consume any region's queue.
#   region-<r>  configure + write + read ^identity\.region\.<r>(_error|_skipped)?$, nothing else.
#               MassTransit's receive endpoint redeclares its queue and the exchange of the same name and
#               binds them (configure on both, write on the queue, read on the exchange), consumes the
#               queue (read), and moves failed or unconsumed messages to <queue>_error / <queue>_skipped,
#               which it declares on first use. Queue and exchange share a name, so the region may also
#               write to its own exchange: that only reaches its own queue. Consume topology and fault
#               publishing are off (RegionTopology.ReceiveRegionEndpoint): otherwise MassTransit declares
#               message-type exchanges (MassTransit:Fault--...) and is refused. No other region matches.
# Checked against a real broker by tests/Identity.Messaging.Tests.
set -euo pipefail

regions=("$@")
[ ${#regions[@]} -gt 0 ] || regions=(eu us au)
for r in "${regions[@]}"; do
  [[ $r =~ ^[a-z0-9-]+$ ]] || { echo "$0: region '$r' must match [a-z0-9-]+" >&2; exit 2; }
done

# join SEPARATOR ITEM...: the items joined with SEPARATOR.
join() { local sep=$1 first=$2; shift 2; printf '%s' "$first" "${@/#/$sep}"; }

users=('    {"name": "identity", "password_hash": "", "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": []}')
permissions=('    {"user": "identity", "vhost": "/", "configure": "^identity\\.region\\.[a-z0-9-]+$", "write": "^identity\\.region\\.[a-z0-9-]+$", "read": "^$"}')
exchanges=()
queues=()
bindings=()
for r in "${regions[@]}"; do
  name="identity.region.$r"
  own="^identity\\\\.region\\\\.$r(_error|_skipped)?$"
  users+=("    {\"name\": \"region-$r\", \"password_hash\": \"\", \"hashing_algorithm\": \"rabbit_password_hashing_sha256\", \"tags\": []}")
  permissions+=("    {\"user\": \"region-$r\", \"vhost\": \"/\", \"configure\": \"$own\", \"write\": \"$own\", \"read\": \"$own\"}")
  exchanges+=("    {\"name\": \"$name\", \"vhost\": \"/\", \"type\": \"fanout\", \"durable\": true, \"auto_delete\": false, \"internal\": false, \"arguments\": {}}")
  queues+=("    {\"name\": \"$name\", \"vhost\": \"/\", \"durable\": true, \"auto_delete\": false, \"arguments\": {\"x-queue-type\": \"quorum\"}}")
  bindings+=("    {\"source\": \"$name\", \"vhost\": \"/\", \"destination\": \"$name\", \"destination_type\": \"queue\", \"routing_key\": \"\", \"arguments\": {}}")
done

nl=$',\n'
cat <<JSON
{
  "users": [
$(join "$nl" "${users[@]}")
  ],
  "vhosts": [{"name": "/"}],
  "permissions": [
$(join "$nl" "${permissions[@]}")
  ],
  "exchanges": [
$(join "$nl" "${exchanges[@]}")
  ],
  "queues": [
$(join "$nl" "${queues[@]}")
  ],
  "bindings": [
$(join "$nl" "${bindings[@]}")
  ]
}
JSON
