#!/bin/sh
# tls_certs.sh DIR - make the certificates test_tls uses, in DIR, with the
# openssl command (nothing is checked in, nothing expires in the tree):
#
#   ca.crt ca.key           a CA ("weave test CA")
#   server.crt server.key   "localhost", DNS:localhost and IP:127.0.0.1, by ca
#   chain.crt               server.crt then ca.crt (a chain file)
#   expired.crt             the same name and key, valid 2019-2020 only, by ca
#   other-ca.crt            a second CA, unrelated to the first
#   other.crt other.key     "localhost" signed by other-ca (an unknown CA)
#
# Keys are EC P-256: quick to make, even under valgrind. openssl x509 -days
# cannot date a certificate in the past, so the expired one is signed with
# openssl ca and explicit -startdate/-enddate.
set -eu
dir=$1
mkdir -p "$dir"
cd "$dir"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

cat > ext.cnf <<'CNF'
[ca_ext]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
[ca]
default_ca = test_ca
[test_ca]
database = index.txt
serial = serial
new_certs_dir = .
default_md = sha256
policy = any
copy_extensions = none
unique_subject = no
x509_extensions = server_ext
[any]
commonName = supplied
CNF

# The two CAs, self-signed.
for ca in ca other-ca; do
    key $ca.key
    openssl req -new -x509 -key $ca.key -out $ca.crt -days 3650 -subj "/CN=weave test $ca" \
        -extensions ca_ext -config ext.cnf 2>/dev/null
done

# The server's key and request, signed by the first CA, and by the other.
key server.key
openssl req -new -key server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -set_serial 2 -days 3650 \
    -extfile ext.cnf -extensions server_ext -out server.crt 2>/dev/null
cp server.key other.key
openssl x509 -req -in server.csr -CA other-ca.crt -CAkey other-ca.key -set_serial 3 -days 3650 \
    -extfile ext.cnf -extensions server_ext -out other.crt 2>/dev/null
cat server.crt ca.crt > chain.crt

# The expired one: openssl ca takes explicit dates.
: > index.txt
echo 04 > serial
openssl ca -batch -config ext.cnf -keyfile ca.key -cert ca.crt -in server.csr -out expired.crt \
    -startdate 20190101000000Z -enddate 20200101000000Z -notext 2>/dev/null
rm -f server.csr index.txt* serial* 04.pem ext.cnf
