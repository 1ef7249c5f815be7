/* The stage-1 config and stage-2 descriptor readers (doc/stage2-format.md). Every offset is a
 * constant of the fixed layout; every length read from the bytes is range-checked before use;
 * every padding byte must be zero. The check order and codes are those of
 * bootchain/stage2-descriptor.ts and stage2-sign.ts, so both refuse a byte the same way. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sha2.h"
#include "stage1.h"

/* PQClean's verify-with-context (FIPS 204 ML-DSA.Verify with ctx), one per parameter set. */
#define PQ_VERIFY(n)                                                                             \
  int PQCLEAN_MLDSA##n##_CLEAN_crypto_sign_verify_ctx(const uint8_t *sig, size_t siglen,         \
                                                      const uint8_t *m, size_t mlen,             \
                                                      const uint8_t *ctx, size_t ctxlen, const uint8_t *pk)
PQ_VERIFY(44);
PQ_VERIFY(65);
PQ_VERIFY(87);

static const char CONTEXT[] = "milkyway/v1/stage2";

void fail(struct failure *f, const char *code, const char *fmt, ...) {
  va_list ap;
  f->code = code;
  va_start(ap, fmt);
  vsnprintf(f->msg, sizeof f->msg, fmt, ap);
  va_end(ap);
}

void hex(char *out, const uint8_t *b, size_t n) {
  static const char d[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = d[b[i] >> 4];
    out[2 * i + 1] = d[b[i] & 15];
  }
  out[2 * n] = 0;
}

static uint32_t u32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t u64(const uint8_t *p) { return (uint64_t)u32(p) | (uint64_t)u32(p + 4) << 32; }

static int zero(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != 0) return 0;
  return 1;
}

/* A NUL-padded printable ASCII field into out (size n+1); 0 when malformed. */
static int text(const uint8_t *p, size_t n, char *out) {
  size_t end = 0;
  while (end < n && p[end] != 0) end++;
  if (!zero(p + end, n - end)) return 0;
  for (size_t i = 0; i < end; i++)
    if (p[i] < 0x20 || p[i] > 0x7e) return 0;
  memcpy(out, p, end);
  out[end] = 0;
  return 1;
}

static size_t pk_bytes(uint32_t alg) {
  return alg == 44 ? 1312 : alg == 65 ? 1952 : alg == 87 ? 2592 : 0;
}
static size_t sig_bytes(uint32_t alg) {
  return alg == 44 ? 2420 : alg == 65 ? 3309 : alg == 87 ? 4627 : 0;
}

int parse_config(const uint8_t *b, size_t n, struct config *c, struct failure *f) {
  memset(c, 0, sizeof *c);
  if (n != S1_CONFIG_SIZE)
    return fail(f, "E_STAGE1_CONFIG", "stage-1 config is %zu bytes, expected %u", n, S1_CONFIG_SIZE), -1;
  if (memcmp(b, "MWS1CONF", 8) != 0 || u32(b + 8) != 1)
    return fail(f, "E_STAGE1_CONFIG", "stage-1 config has no MWS1CONF magic or an unknown format"), -1;
  c->key_count = u32(b + 12);
  if (c->key_count < 1 || c->key_count > S1_MAX_KEYS)
    return fail(f, "E_STAGE1_CONFIG", "stage-1 config pins %u keys", c->key_count), -1;
  c->rollback_floor = u64(b + 16);
  memcpy(c->certs_root, b + 24, 32);
  memcpy(c->user_root, b + 56, 32);
  memcpy(c->vendor_root, b + 88, 32);
  if (!text(b + 120, 64, c->sb_signer) || !zero(b + 184, 256 - 184))
    return fail(f, "E_STAGE1_CONFIG", "stage-1 config header padding is not zero"), -1;
  for (uint32_t i = 0; i < S1_MAX_KEYS; i++) {
    const uint8_t *k = b + 256 + i * 2688;
    if (i >= c->key_count) {
      if (!zero(k, 2688)) return fail(f, "E_STAGE1_CONFIG", "unused key slot %u is not zero", i), -1;
      continue;
    }
    struct pinned_key *p = &c->keys[i];
    p->alg = u32(k);
    p->pk_len = u32(k + 4);
    if (pk_bytes(p->alg) == 0 || p->pk_len != pk_bytes(p->alg))
      return fail(f, "E_STAGE1_CONFIG", "key %u is not an ML-DSA-44/65/87 key", i), -1;
    memcpy(p->cert_fp, k + 8, 32);
    if (!text(k + 40, 56, p->label)) return fail(f, "E_STAGE1_CONFIG", "key %u label is malformed", i), -1;
    memcpy(p->pk, k + 96, p->pk_len);
    if (!zero(k + 96 + p->pk_len, PK_MAX - p->pk_len))
      return fail(f, "E_STAGE1_CONFIG", "key %u padding is not zero", i), -1;
    sha256(p->key_id, p->pk, p->pk_len);
  }
  return 0;
}

static int mldsa_verify(uint32_t alg, const uint8_t *sig, const uint8_t *m, size_t mlen, const uint8_t *pk) {
  const uint8_t *ctx = (const uint8_t *)CONTEXT;
  size_t cl = sizeof CONTEXT - 1;
  switch (alg) {
    case 44: return PQCLEAN_MLDSA44_CLEAN_crypto_sign_verify_ctx(sig, 2420, m, mlen, ctx, cl, pk) == 0;
    case 65: return PQCLEAN_MLDSA65_CLEAN_crypto_sign_verify_ctx(sig, 3309, m, mlen, ctx, cl, pk) == 0;
    case 87: return PQCLEAN_MLDSA87_CLEAN_crypto_sign_verify_ctx(sig, 4627, m, mlen, ctx, cl, pk) == 0;
    default: return 0;
  }
}

/* Is `word` (len bytes) one of the space-separated words of s, as a prefix match? */
static int count_words(const char *s, const char *prefix, const char *exact, int *exact_hits) {
  int hits = 0;
  size_t pl = strlen(prefix);
  *exact_hits = 0;
  const char *w = s;
  while (*w) {
    const char *e = strchr(w, ' ');
    size_t len = e ? (size_t)(e - w) : strlen(w);
    if (len >= pl && memcmp(w, prefix, pl) == 0) {
      hits++;
      if (exact && len == strlen(exact) && memcmp(w, exact, len) == 0) (*exact_hits)++;
    }
    if (!e) break;
    w = e + 1;
  }
  return hits;
}

int verify_header(const struct config *c, const uint8_t *img, size_t n, uint64_t total,
                  struct descriptor *d, struct failure *f) {
  memset(d, 0, sizeof *d);
  if (n < S2_KERNEL_OFFSET)
    return fail(f, "E_DESC_TRUNCATED", "%zu bytes, the descriptor and its signature need %u", n, S2_KERNEL_OFFSET), -1;
  if (memcmp(img, "MWSTAGE2", 8) != 0) return fail(f, "E_DESC_MAGIC", "no MWSTAGE2 descriptor"), -1;
  if (u32(img + 8) != 1) return fail(f, "E_DESC_VERSION", "descriptor format %u, this reader knows 1", u32(img + 8)), -1;
  d->alg = u32(img + 12);
  if (sig_bytes(d->alg) == 0) return fail(f, "E_DESC_ALGORITHM", "algorithm %u is not ML-DSA-44/65/87", d->alg), -1;
  memcpy(d->key_id, img + 32, 32);
  for (uint32_t i = 0; i < c->key_count; i++)
    if (c->keys[i].alg == d->alg && memcmp(c->keys[i].key_id, d->key_id, 32) == 0) d->signer = &c->keys[i];
  if (!d->signer) {
    char id[65];
    hex(id, d->key_id, 32);
    id[16] = 0;
    return fail(f, "E_DESC_KEY_UNPINNED", "signed by key %s..., which stage 1 does not pin", id), -1;
  }
  if (!mldsa_verify(d->alg, img + S2_HEADER, img, S2_HEADER, d->signer->pk))
    return fail(f, "E_DESC_SIGNATURE", "the ML-DSA-%u signature does not verify under %s", d->alg, d->signer->label), -1;
  /* From here on the header is the vendor's: check it is also well formed. */
  size_t sl = sig_bytes(d->alg);
  if (!zero(img + S2_HEADER + sl, S2_SIGAREA - sl))
    return fail(f, "E_DESC_LAYOUT", "the signature area is not zero after the %zu-byte signature", sl), -1;
  if (!zero(img + 260, 12) || !zero(img + 2320, S2_HEADER - 2320))
    return fail(f, "E_DESC_FIELD", "reserved bytes are not zero"), -1;
  if (!text(img + 64, 32, d->name)) return fail(f, "E_DESC_FIELD", "name is not NUL-padded printable ASCII"), -1;
  if (!text(img + 96, 32, d->version)) return fail(f, "E_DESC_FIELD", "version is not NUL-padded printable ASCII"), -1;
  if (!text(img + 272, S2_CMDLINE_MAX, d->cmdline)) return fail(f, "E_DESC_FIELD", "cmdline is not NUL-padded printable ASCII"), -1;
  if (d->name[0] == 0 || d->version[0] == 0) return fail(f, "E_DESC_FIELD", "name and version must not be empty"), -1;
  if (u32(img + 256) != strlen(d->cmdline))
    return fail(f, "E_DESC_FIELD", "cmdline length %u, the text is %zu bytes", u32(img + 256), strlen(d->cmdline)), -1;
  d->rollback = u64(img + 16);
  d->created = u64(img + 24);
  uint64_t ko = u64(img + 128);
  d->kernel_size = u64(img + 136);
  memcpy(d->kernel_sha, img + 144, 32);
  d->initrd_offset = u64(img + 176);
  d->initrd_size = u64(img + 184);
  memcpy(d->initrd_sha, img + 192, 32);
  memcpy(d->root_hash, img + 224, 32);
  if (ko != S2_KERNEL_OFFSET || d->kernel_size == 0 || d->kernel_size > S2_KERNEL_MAX)
    return fail(f, "E_DESC_LAYOUT", "kernel at %llu, %llu bytes", (unsigned long long)ko, (unsigned long long)d->kernel_size), -1;
  uint64_t io = (S2_KERNEL_OFFSET + d->kernel_size + 4095) / 4096 * 4096;
  if (d->initrd_offset != io || d->initrd_size == 0 || d->initrd_size > S2_INITRD_MAX)
    return fail(f, "E_DESC_LAYOUT", "initramfs at %llu, %llu bytes (expected at %llu)", (unsigned long long)d->initrd_offset,
                (unsigned long long)d->initrd_size, (unsigned long long)io), -1;
  if (io + d->initrd_size > total)
    return fail(f, "E_DESC_LAYOUT", "the initramfs ends at %llu, the partition has %llu bytes",
                (unsigned long long)(io + d->initrd_size), (unsigned long long)total), -1;
  char want[15 + 65], rh[65];
  hex(rh, d->root_hash, 32);
  snprintf(want, sizeof want, "mway.roothash=%s", rh);
  int exact;
  if (count_words(d->cmdline, "mway.roothash=", want, &exact) != 1 || exact != 1)
    return fail(f, "E_DESC_CMDLINE", "the command line must carry mway.roothash=%s exactly once", rh), -1;
  static const char *const owned[] = {"mway.certs=", "mway.slot=", "mway.stage1="};
  for (size_t i = 0; i < 3; i++)
    if (count_words(d->cmdline, owned[i], NULL, &exact) != 0)
      return fail(f, "E_DESC_CMDLINE", "the command line sets %s, which stage 1 owns", owned[i]), -1;
  if (d->rollback < c->rollback_floor)
    return fail(f, "E_DESC_ROLLBACK", "rollback index %llu is below the floor %llu", (unsigned long long)d->rollback,
                (unsigned long long)c->rollback_floor), -1;
  return 0;
}

int verify_parts(const struct descriptor *d, const uint8_t *img, size_t n, struct failure *f) {
  uint8_t h[32];
  if (n < d->initrd_offset + d->initrd_size) return fail(f, "E_DESC_TRUNCATED", "the partition ends inside the initramfs"), -1;
  /* The alignment gap between kernel and initramfs is covered by no digest: it must be zero. */
  if (!zero(img + S2_KERNEL_OFFSET + d->kernel_size, d->initrd_offset - S2_KERNEL_OFFSET - d->kernel_size))
    return fail(f, "E_DESC_LAYOUT", "the gap between kernel and initramfs is not zero"), -1;
  sha256(h, img + S2_KERNEL_OFFSET, d->kernel_size);
  if (memcmp(h, d->kernel_sha, 32) != 0) return fail(f, "E_DESC_KERNEL_DIGEST", "the kernel's sha256 is not the signed one"), -1;
  sha256(h, img + d->initrd_offset, d->initrd_size);
  if (memcmp(h, d->initrd_sha, 32) != 0)
    return fail(f, "E_DESC_INITRD_DIGEST", "the initramfs's sha256 is not the signed one"), -1;
  return 0;
}
