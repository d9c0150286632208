#!/usr/bin/env bash
# Development certificates for service-to-service mutual TLS (RFC 8705): never for production.
#
#   deploy/make-service-certs.sh [--readable-keys] OUT_DIR [REGION...]      # regions default to: eu us
#
# Uses the development CA in OUT_DIR (ca.pem + ca.key, as deploy/rabbitmq/make-certs.sh writes it) or makes one, and
# writes into OUT_DIR (created, mode 700; keys are mode 600 and never belong in git):
#   ca.pem, ca.key                      the development CA: Identity's Mtls:TrustedCaFile, the services' trust for
#                                       callers (IdentityTokenValidation:TrustedCaFile) and for servers
#                                       (IdentityTokenClient:TrustedServerCaFile)
#   identity-mtls.{pem,key}             Identity's mTLS port (or the proxy's mTLS host): CN=localhost, SAN DNS:localhost,
#                                       DNS:identity, DNS:identity-mtls (the compose proxy's alias), IP:127.0.0.1
#   region-<r>-api.{pem,key}            the API endpoint of region <r>'s service: SAN DNS:localhost, DNS:region-<r>, IP:127.0.0.1
#   region-<r>-service.{pem,key,pfx}    client CN=region-<r>-service (tls_client_auth, registered by that subject DN)
# The .pfx files hold the client certificate and its key with an EMPTY password. Keys are ECDSA P-256; certificates
# last 30 days. Existing files (except the CA) are replaced.
# --readable-keys: keys mode 644, for docker compose, whose containers run as another user than the one that made
# them. LOCAL USE ONLY.
set -euo pipefail

usage() { echo "usage: $0 [--readable-keys] OUT_DIR [REGION...]" >&2; exit 2; }
readable=false
if [ "${1:-}" = "--readable-keys" ]; then
  readable=true
  shift
fi
[ $# -ge 1 ] || usage
out=$1
shift
regions=("$@")
[ ${#regions[@]} -gt 0 ] || regions=(eu us)
for r in "${regions[@]}"; do
  [[ $r =~ ^[a-z0-9-]+$ ]] || { echo "$0: region '$r' must match [a-z0-9-]+" >&2; exit 2; }
done

command -v openssl >/dev/null || { echo "$0: openssl not found" >&2; exit 1; }
# shellcheck source=deploy/cert-functions.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/cert-functions.sh"
mkdir -p "$out"
chmod 700 "$out"
umask 077
cd "$out"

days=30

if [ -f ca.pem ] && [ -f ca.key ]; then
  echo "# using the development CA in $(pwd)" >&2
else
  new_ca ca "Identity development CA"
fi

issue ca identity-mtls localhost serverAuth "DNS:localhost,DNS:identity,DNS:identity-mtls,IP:127.0.0.1"
for r in "${regions[@]}"; do
  issue ca "region-$r-api" "region-$r" serverAuth "DNS:localhost,DNS:region-$r,IP:127.0.0.1"
  client ca "region-$r-service" "region-$r-service"
done

rm -f ./*.srl
chmod 644 ./*.pem
if $readable; then
  chmod 755 .
  chmod 644 ./*.key ./*.pfx
  chmod 600 ca.key   # no container needs the CA's key
fi
echo "# certificates in $(pwd): CA, identity-mtls, ${regions[*]/#/region-} (api + service)" >&2
