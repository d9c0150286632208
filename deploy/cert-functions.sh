# shellcheck shell=bash
# Functions shared by the development-certificate scripts (deploy/rabbitmq/make-certs.sh, deploy/make-service-certs.sh):
# source this file, set `days`, and call them from inside the output folder. Development and tests only.
#
#   new_key NAME                          an ECDSA P-256 private key in NAME.key
#   new_ca NAME CN                        a self-signed CA certificate NAME.pem with its key NAME.key
#   issue CA NAME CN USAGE [SAN]          NAME.pem/NAME.key signed by CA, extended key usage USAGE
#                                         (serverAuth or clientAuth), subject alternative names SAN when given
#   client CA NAME CN [SAN]               a client certificate plus NAME.pfx (certificate + key, EMPTY password) for .NET

new_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }

new_ca() {
  new_key "$1"
  openssl req -x509 -new -key "$1.key" -subj "/O=Identity development/CN=$2" -days "$days" -sha256 \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" \
    -out "$1.pem"
}

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

client() {
  issue "$1" "$2" "$3" clientAuth "${4:-}"
  openssl pkcs12 -export -in "$2.pem" -inkey "$2.key" -out "$2.pfx" -passout pass:
}
