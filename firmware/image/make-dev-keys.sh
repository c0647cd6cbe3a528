#!/bin/sh
# make-dev-keys.sh KEYDIR: a development CA and a signing certificate for RAUC bundles, for builds and
# the system tests only. Idempotent: existing keys are kept. Release keys never come from here: they live
# in an HSM or the CI's secret store and are handed to the build as RAUC_CERT/RAUC_KEY/RAUC_KEYRING
# (see firmware/README.md, "Key handling"). KEYDIR must be outside the repository.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 KEYDIR" >&2; exit 2; }
DIR=$1
mkdir -p "$DIR"
chmod 0700 "$DIR"
cd "$DIR"
if [ -f ca.cert.pem ] && [ -f signing.cert.pem ] && [ -f signing.key.pem ]; then
    echo "dev keys: kept $DIR"
    exit 0
fi
umask 077
# CA: EC P-256, 10 years; only ever signs the development signing certificate. Kept when it exists, so
# images already built keep trusting new signing certificates.
[ -f ca.cert.pem ] && [ -f ca.key.pem ] || openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout ca.key.pem -out ca.cert.pem -days 3650 \
    -subj "/O=edge-assistant development/CN=edge-assistant dev update CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout signing.key.pem -out signing.csr.pem \
    -subj "/O=edge-assistant development/CN=edge-assistant dev bundle signer" 2>/dev/null
# codeSigning for the device (system.conf check-purpose=codesign); emailProtection for the build host,
# where `rauc bundle` checks the new signature with RAUC's default purpose (S/MIME signing).
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning,emailProtection\n' > signing.ext
openssl x509 -req -in signing.csr.pem -CA ca.cert.pem -CAkey ca.key.pem -CAcreateserial \
    -out signing.cert.pem -days 1825 -extfile signing.ext 2>/dev/null
rm -f signing.csr.pem signing.ext
chmod 0644 ca.cert.pem signing.cert.pem
echo "dev keys: made $DIR (CA ca.cert.pem -> signing.cert.pem)"
