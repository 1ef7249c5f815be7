/* PQClean's sign.c references randombytes() for key generation and signing, which stage 1
 * never does: verification needs no randomness. Calling it is a bug, so it aborts. */
#include <stdlib.h>
#include <stdint.h>
#include <stddef.h>
int PQCLEAN_randombytes(uint8_t *out, size_t n);
int PQCLEAN_randombytes(uint8_t *out, size_t n) {
  (void)out;
  (void)n;
  abort();
}
