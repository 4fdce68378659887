#!/bin/sh
# A private CA and the certificates of deploy/compose (openssl). Replace with your PKI in
# production; rotate by re-running with a new CA and restarting every service.
set -eu
cd "$(dirname "$0")"
mkdir -p certs secrets
chmod 700 certs secrets
[ -f certs/ca.pem ] || openssl req -x509 -newkey rsa:3072 -nodes -days 825 -subj "/CN=case-engine-ca" \
  -keyout certs/ca-key.pem -out certs/ca.pem
issue() {  # name, subjectAltName
  [ -f "certs/$1.pem" ] && return 0
  openssl req -newkey rsa:3072 -nodes -subj "/CN=$1" -keyout "certs/$1-key.pem" -out "certs/$1.csr"
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$2" > "certs/$1.ext"
  openssl x509 -req -in "certs/$1.csr" -CA certs/ca.pem -CAkey certs/ca-key.pem -CAcreateserial \
    -days 397 -extfile "certs/$1.ext" -out "certs/$1.pem"
  rm "certs/$1.csr" "certs/$1.ext"
}
issue temporal "DNS:temporal,DNS:localhost"
issue db "DNS:temporal-db,DNS:engine-db"
issue engine "DNS:case-engine"
issue admin "DNS:temporal-admin"
issue ui "DNS:temporal-ui"
chmod 600 certs/*-key.pem
# Payload key and codec-server tokens (files; never in .env, never in git).
[ -f secrets/payload_keys ] || printf '%s=%s\n' "$(date +%Y%m)" "$(openssl rand -base64 32)" > secrets/payload_keys
[ -f secrets/codec_tokens ] || printf 'auditor=%s\n' "$(openssl rand -base64 33 | tr '+/' '-_')" > secrets/codec_tokens
chmod 600 secrets/*
echo "certs/ and secrets/ ready; PAYLOAD_KEY_ID=$(cut -d= -f1 secrets/payload_keys | tail -1)"
