#!/usr/bin/env bash
# Development and test certificates for the RabbitMQ broker (mutual TLS): never for production.
#
#   deploy/rabbitmq/make-certs.sh OUT_DIR [REGION...]      # regions default to: eu us au
#
# Writes into OUT_DIR (created, mode 700; keys are mode 600 and never belong in git):
#   ca.pem, ca.key                      the private development CA (the broker trusts only this one)
#   server.pem, server.key              the broker: CN=localhost, SAN DNS:localhost, IP:127.0.0.1
#   identity.{pem,key,pfx}              client CN=identity (Identity, the publisher)
#   region-<r>.{pem,key,pfx}            client CN=region-<r>, one per region
#   rogue-ca.pem, rogue-ca.key          a second, untrusted CA ...
#   rogue-identity.{pem,key,pfx}        ... and a client CN=identity issued by it (refusal tests)
# The .pfx files (for .NET) hold the client certificate and its key, with an EMPTY password.
# Keys are ECDSA P-256; certificates last 30 days. Existing files in OUT_DIR are replaced.
set -euo pipefail

usage() { echo "usage: $0 OUT_DIR [REGION...]" >&2; exit 2; }
[ $# -ge 1 ] || usage
out=$1
shift
regions=("$@")
[ ${#regions[@]} -gt 0 ] || regions=(eu us au)
for r in "${regions[@]}"; do
  [[ $r =~ ^[a-z0-9-]+$ ]] || { echo "$0: region '$r' must match [a-z0-9-]+" >&2; exit 2; }
done

command -v openssl >/dev/null || { echo "$0: openssl not found" >&2; exit 1; }
# shellcheck source=deploy/cert-functions.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/cert-functions.sh"
mkdir -p "$out"
chmod 700 "$out"
umask 077
cd "$out"

days=30

new_ca ca "Identity development CA"
issue ca server localhost serverAuth "DNS:localhost,IP:127.0.0.1"
client ca identity identity
for r in "${regions[@]}"; do
  client ca "region-$r" "region-$r"
done

new_ca rogue-ca "Rogue CA (not trusted by the broker)"
client rogue-ca rogue-identity identity

rm -f ./*.srl
# The public certificates may be read by anyone; keys and .pfx files stay 600.
chmod 644 ./*.pem
echo "# certificates in $(pwd): CA, server (localhost), identity, ${regions[*]/#/region-}, rogue CA + rogue-identity" >&2
