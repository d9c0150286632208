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
mkdir -p "$out"
chmod 700 "$out"
umask 077
cd "$out"

days=30

# new_key NAME: an ECDSA P-256 private key in NAME.key.
new_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }

# new_ca NAME CN: a self-signed CA certificate NAME.pem with its key NAME.key.
new_ca() {
  new_key "$1"
  openssl req -x509 -new -key "$1.key" -subj "/O=Identity development/CN=$2" -days "$days" -sha256 \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" \
    -out "$1.pem"
}

# issue CA NAME CN USAGE [SAN]: NAME.pem/NAME.key signed by CA, extended key usage USAGE
# (serverAuth or clientAuth), with the subject alternative names SAN when given.
issue() {
  local ca=$1 name=$2 cn=$3 usage=$4 san=${5:-} ext
  new_key "$name"
  ext=$(mktemp)
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature"
    echo "extendedKeyUsage=$usage"
    echo "subjectKeyIdentifier=hash"
    echo "authorityKeyIdentifier=keyid"
    [ -z "$san" ] || echo "subjectAltName=$san"
  } >"$ext"
  openssl req -new -key "$name.key" -subj "/O=Identity development/CN=$cn" \
    | openssl x509 -req -CA "$ca.pem" -CAkey "$ca.key" -CAcreateserial -days "$days" -sha256 \
        -extfile "$ext" -out "$name.pem" 2>/dev/null
  rm -f "$ext"
}

# client CA NAME CN: a client certificate plus NAME.pfx (certificate + key, empty password) for .NET.
client() {
  issue "$1" "$2" "$3" clientAuth
  openssl pkcs12 -export -in "$2.pem" -inkey "$2.key" -out "$2.pfx" -passout pass:
}

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
