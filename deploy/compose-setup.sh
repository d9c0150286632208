#!/usr/bin/env bash
# Everything docker-compose.yml mounts from deploy/certs, made from the development CA: never for production.
#
#   deploy/compose-setup.sh [OUT_DIR]        # default: deploy/certs (git-ignored)
#
# 1. deploy/rabbitmq/make-certs.sh: a new development CA, the broker's certificate and the bus clients identity,
#    region-eu and region-us (.pfx with an empty password);
# 2. deploy/make-service-certs.sh: from the same CA, the proxy's mTLS host (identity-mtls) and the regions' API and
#    service certificates;
# 3. the broker's files: rabbitmq.conf (TLS only on 5671, the template of deploy/rabbitmq) and definitions.json
#    (users, permissions, the eu and us exchanges and queues).
# Keys are made readable (644) because the containers run as other, non-root users; the CA's key stays 600.
# LOCAL USE ONLY. Run it again when the certificates expire (30 days).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:-$here/certs}
regions=(eu us)

"$here/rabbitmq/make-certs.sh" "$out" "${regions[@]}" 2>/dev/null
"$here/make-service-certs.sh" --readable-keys "$out" "${regions[@]}" 2>/dev/null
"$here/rabbitmq/make-definitions.sh" "${regions[@]}" >"$out/definitions.json"
sed -e 's|@ADDRESS@|0.0.0.0|; s|@PORT@|5671|; s|@CERTS@|/certs|g; s|@DEFINITIONS@|/etc/rabbitmq/definitions.json|' \
  "$here/rabbitmq/rabbitmq.conf.template" >"$out/rabbitmq.conf"
rm -f "$out"/rogue-*
chmod 755 "$out"
chmod 644 "$out"/*.key "$out"/*.pfx "$out"/definitions.json "$out"/rabbitmq.conf
chmod 600 "$out/ca.key"
echo "# $out: CA, broker, bus clients, proxy (identity-mtls), region API and service certificates, rabbitmq.conf, definitions.json" >&2
