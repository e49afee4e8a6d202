/* The little cryptography OAuth needs: secure random bytes, SHA-256 (PKCE S256), base64url. */
#ifndef FLEXTELL_CRYPTO_H
#define FLEXTELL_CRYPTO_H

#include <stddef.h>

/* Fills buf from the kernel's CSPRNG; 0, or -1 when none is available. */
int fx_random_bytes(unsigned char *buf, size_t n);
void fx_sha256(const unsigned char *data, size_t n, unsigned char out[32]);
/* Writes base64url without padding and a terminating NUL; out needs 4*ceil(n/3)+1 bytes. */
size_t fx_base64url(const unsigned char *in, size_t n, char *out);

#endif
