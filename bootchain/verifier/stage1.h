/* mway-stage1: the C verifier of MilkyWay's stage 1 (doc/boot.md, doc/stage2-format.md).
 * Layouts and check order mirror bootchain/stage2-descriptor.ts, stage1-config.ts, slot.ts. */
#ifndef MWAY_STAGE1_H
#define MWAY_STAGE1_H
#include <stddef.h>
#include <stdint.h>

#define S2_HEADER 4096u
#define S2_SIGAREA 8192u
#define S2_KERNEL_OFFSET 12288u
#define S2_CMDLINE_MAX 2048u
#define S2_KERNEL_MAX (64u << 20)
#define S2_INITRD_MAX (256u << 20)
#define S1_CONFIG_SIZE (256u + 4u * 2688u)
#define S1_MAX_KEYS 4
#define PK_MAX 2592u

struct pinned_key {
  uint32_t alg;
  uint32_t pk_len;
  uint8_t cert_fp[32];
  char label[57];
  uint8_t pk[PK_MAX];
  uint8_t key_id[32];
};

struct config {
  uint32_t key_count;
  uint64_t rollback_floor;
  uint8_t certs_root[32];
  uint8_t user_root[32];
  uint8_t vendor_root[32];
  char sb_signer[65];
  struct pinned_key keys[S1_MAX_KEYS];
};

struct descriptor {
  uint32_t alg;
  uint64_t rollback;
  uint64_t created;
  uint8_t key_id[32];
  char name[33];
  char version[33];
  uint64_t kernel_size, initrd_offset, initrd_size;
  uint8_t kernel_sha[32], initrd_sha[32], root_hash[32];
  char cmdline[S2_CMDLINE_MAX + 1];
  const struct pinned_key *signer;
};

/* A failed check: its stable code (doc/errors-bootchain.md) and a message. */
struct failure {
  const char *code;
  char msg[256];
};

int parse_config(const uint8_t *b, size_t n, struct config *c, struct failure *f);
/* Checks the 12 KiB prefix (descriptor + signature) and the signed fields; `total` is how many
 * bytes of the partition exist. Does not look at the kernel or initramfs bytes. */
int verify_header(const struct config *c, const uint8_t *img, size_t n, uint64_t total,
                  struct descriptor *d, struct failure *f);
/* Checks the parts' digests, `img` holding the whole partition prefix up to the initramfs end. */
int verify_parts(const struct descriptor *d, const uint8_t *img, size_t n, struct failure *f);

/* Slots (ChromeOS bits 48-51 priority, 52-55 tries, 56 successful). */
struct slot_state {
  int priority, tries, successful;
};
struct slot_ops {
  void *ctx;
  int (*write)(void *ctx, int slot, struct slot_state s); /* 0 ok */
  int (*verify)(void *ctx, int slot, int trial);          /* 1 ok */
  void (*boot)(void *ctx, int slot, int trial);           /* returns only on failure */
};
/* Runs stage 1's plan; returns when no slot booted. present[i] says slot i exists. */
void slot_run(struct slot_state st[2], const int present[2], const struct slot_ops *ops);
struct slot_state slot_decode(uint64_t attrs);
uint64_t slot_encode(uint64_t attrs, struct slot_state s);

/* GPT of a disk (a device or an image file) with the boot-a / boot-b partitions. */
struct gpt_slots {
  int present[2];
  uint32_t index[2]; /* 1-based entry index */
  uint64_t first_lba[2], last_lba[2], attrs[2];
  uint32_t sector;
};
int gpt_find_slots(int fd, const uint8_t type[16], struct gpt_slots *g, struct failure *f);
int gpt_write_attrs(int fd, uint32_t sector, uint32_t index, uint64_t attrs, struct failure *f);

uint32_t crc32_ieee(const uint8_t *p, size_t n);
void fail(struct failure *f, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void hex(char *out, const uint8_t *b, size_t n);
#endif
