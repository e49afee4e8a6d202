#!/bin/sh
# A certificate chain for the TLS specs of the nginx driver, in $1: root CA -> intermediate 1 ->
# intermediate 2 -> a server certificate for 127.0.0.1 (and localhost). chain.pem is what the
# server sends (leaf and both intermediates); a client trusts root.pem and needs a verify depth
# of 2 or more. The IP is among the DNS names too: nginx's Lua module matches a certificate to
# the host by DNS names only.
set -e
d=$1; cd "$d"
ca_ext="basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
openssl req -x509 -newkey rsa:2048 -nodes -keyout root.key -out root.pem -days 2 -subj "/CN=flextell spec root" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
printf "$ca_ext" > ca.ext
issuer=root
for n in 1 2; do
  openssl req -newkey rsa:2048 -nodes -keyout inter$n.key -out inter$n.csr -subj "/CN=flextell spec intermediate $n" 2>/dev/null
  openssl x509 -req -in inter$n.csr -CA $issuer.pem -CAkey $issuer.key -CAcreateserial -out inter$n.pem -days 2 \
    -extfile ca.ext 2>/dev/null
  issuer=inter$n
done
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=127.0.0.1" 2>/dev/null
printf "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:127.0.0.1,DNS:localhost\n" > server.ext
openssl x509 -req -in server.csr -CA inter2.pem -CAkey inter2.key -CAcreateserial -out server.pem -days 2 \
  -extfile server.ext 2>/dev/null
cat server.pem inter2.pem inter1.pem > chain.pem
