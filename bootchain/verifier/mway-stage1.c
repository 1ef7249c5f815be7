/* mway-stage1: the verifier and loader that runs in MilkyWay's stage 1 (doc/boot.md).
 *
 *   mway-stage1 boot DISK CONFIG [--secure-boot on|off] [--no-exec OUTDIR]
 *       picks a slot from DISK's GPT (boot-a / boot-b), decrements a trial's tries on disk,
 *       reads that boot partition, verifies its stage-2 descriptor (ML-DSA, pinned keys,
 *       rollback floor, kernel and initramfs sha256), hands the verified bytes to the kernel
 *       with kexec_file_load(2) from sealed memfds (no file a second process could swap) and
 *       reboots into them; on any failure it marks that slot bad and tries the other one.
 *       Returns (exit 1) only when no slot booted. --no-exec writes kernel, initrd and
 *       cmdline to OUTDIR instead (host tests).
 *   mway-stage1 verify CONFIG IMAGE      checks a boot partition image; exit 0 or 1
 *   mway-stage1 plan PA TA SA PB TB SB VA VB   prints the slot plan for test vectors
 *
 * Console lines: `mway-stage1: …` for each link verified, `MILKYWAY: … CODE: …` for refusals. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/reboot.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "stage1.h"

#ifndef MWAY_BOOT_TYPE
#error "MWAY_BOOT_TYPE (the boot partition type GUID, 16 bytes as GPT stores them) is set by the build"
#endif
static const uint8_t BOOT_TYPE[16] = {MWAY_BOOT_TYPE};
#define MAX_READ (S2_KERNEL_OFFSET + S2_KERNEL_MAX + 4096u + S2_INITRD_MAX)

static int read_file(const char *path, uint8_t **out, size_t *n, size_t max) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
    if (fd >= 0) close(fd);
    return -1;
  }
  *n = (size_t)st.st_size;
  *out = malloc(*n ? *n : 1);
  size_t got = 0;
  while (*out && got < *n) {
    ssize_t r = read(fd, *out + got, *n - got);
    if (r <= 0) break;
    got += (size_t)r;
  }
  close(fd);
  return *out && got == *n ? 0 : -1;
}

static int read_at(int fd, uint8_t *buf, size_t n, uint64_t off) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = pread(fd, buf + got, n - got, (off_t)(off + got));
    if (r <= 0) return -1;
    got += (size_t)r;
  }
  return 0;
}

static const char *alg_name(uint32_t a) { return a == 44 ? "ML-DSA-44" : a == 65 ? "ML-DSA-65" : "ML-DSA-87"; }

static void say_verified(char slot, const struct descriptor *d) {
  char fp[65];
  hex(fp, d->signer->cert_fp, 32);
  fp[16] = 0;
  printf("mway-stage1: slot %c: stage 2 %s %s (rollback index %llu) verified: %s signature by pinned vendor key \"%s\" "
         "(certificate %s...), kernel and initramfs sha256 match\n",
         slot, d->name, d->version, (unsigned long long)d->rollback, alg_name(d->alg), d->signer->label, fp);
}

/* ---- boot ---- */

struct boot_ctx {
  int fd;
  const char *disk;
  struct config cfg;
  struct gpt_slots g;
  int secure_boot;
  const char *no_exec;
  int kfd, ifd;
  char cmdline[S2_CMDLINE_MAX + 256];
};

static int b_write(void *p, int slot, struct slot_state s) {
  struct boot_ctx *c = p;
  struct failure f;
  uint64_t a = slot_encode(c->g.attrs[slot], s);
  if (gpt_write_attrs(c->fd, c->g.sector, c->g.index[slot], a, &f) != 0) {
    printf("MILKYWAY: cannot record slot %c's state on %s: %s: %s\n", 'a' + slot, c->disk, f.code, f.msg);
    return -1;
  }
  c->g.attrs[slot] = a;
  return 0;
}

static int memfd_of(const char *name, const uint8_t *b, size_t n) {
  int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return -1;
  size_t done = 0;
  while (done < n) {
    ssize_t r = write(fd, b + done, n - done);
    if (r <= 0) return close(fd), -1;
    done += (size_t)r;
  }
  /* Sealed: nothing can change the verified bytes before the kernel reads them. */
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) != 0) return close(fd), -1;
  return fd;
}

static int save(const char *dir, const char *name, const void *b, size_t n) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *o = fopen(path, "wb");
  if (!o) return -1;
  size_t w = fwrite(b, 1, n, o);
  return fclose(o) == 0 && w == n ? 0 : -1;
}

static int b_verify(void *p, int slot, int trial) {
  struct boot_ctx *c = p;
  char s = (char)('a' + slot);
  struct failure f;
  struct descriptor d;
  uint64_t start = c->g.first_lba[slot] * c->g.sector;
  uint64_t total = (c->g.last_lba[slot] - c->g.first_lba[slot] + 1) * c->g.sector;
  uint8_t *img = malloc(S2_KERNEL_OFFSET);
  if (!img || total < S2_KERNEL_OFFSET || read_at(c->fd, img, S2_KERNEL_OFFSET, start) != 0) {
    printf("MILKYWAY: stage 2 slot %c refused: E_DESC_TRUNCATED: cannot read its descriptor\n", s);
    free(img);
    return 0;
  }
  if (verify_header(&c->cfg, img, S2_KERNEL_OFFSET, total, &d, &f) != 0) {
    printf("MILKYWAY: stage 2 slot %c refused: %s: %s\n", s, f.code, f.msg);
    free(img);
    return 0;
  }
  size_t need = (size_t)(d.initrd_offset + d.initrd_size);
  uint8_t *all = realloc(img, need);
  if (!all || read_at(c->fd, all + S2_KERNEL_OFFSET, need - S2_KERNEL_OFFSET, start + S2_KERNEL_OFFSET) != 0) {
    printf("MILKYWAY: stage 2 slot %c refused: E_DESC_TRUNCATED: cannot read its kernel and initramfs\n", s);
    free(all ? all : img);
    return 0;
  }
  if (verify_parts(&d, all, need, &f) != 0) {
    printf("MILKYWAY: stage 2 slot %c refused: %s: %s\n", s, f.code, f.msg);
    free(all);
    return 0;
  }
  say_verified(s, &d);
  char certs[65];
  hex(certs, c->cfg.certs_root, 32);
  snprintf(c->cmdline, sizeof c->cmdline, "%s mway.certs=%s mway.slot=%c%s", d.cmdline, certs, s,
           trial ? " mway.onfail=reboot" : "");
  int ok = 1;
  if (c->no_exec) {
    ok = save(c->no_exec, "kernel", all + S2_KERNEL_OFFSET, d.kernel_size) == 0 &&
         save(c->no_exec, "initrd", all + d.initrd_offset, d.initrd_size) == 0 &&
         save(c->no_exec, "cmdline", c->cmdline, strlen(c->cmdline)) == 0;
  } else {
    c->kfd = memfd_of("stage2-kernel", all + S2_KERNEL_OFFSET, d.kernel_size);
    c->ifd = memfd_of("stage2-initrd", all + d.initrd_offset, d.initrd_size);
    if (c->kfd < 0 || c->ifd < 0) {
      printf("MILKYWAY: stage 2 slot %c: cannot stage it in memory: %s\n", s, strerror(errno));
      ok = 0;
    } else if (syscall(SYS_kexec_file_load, c->kfd, c->ifd, strlen(c->cmdline) + 1, c->cmdline, 0UL) != 0) {
      int e = errno;
      printf("MILKYWAY: stage 2 slot %c refused: E_KEXEC_REFUSED: kexec_file_load: %s%s\n", s, strerror(e),
             e == ENOKEY || e == ENODATA || e == EKEYREJECTED || e == EPERM
                 ? " (Secure Boot: the stage-2 kernel carries no Authenticode signature by a key in db)"
                 : "");
      ok = 0;
    } else if (c->secure_boot) {
      printf("mway-stage1: slot %c: kexec_file_load accepted the stage-2 kernel (its Authenticode signature chains to db)\n", s);
    }
  }
  free(all);
  return ok;
}

static void b_boot(void *p, int slot, int trial) {
  struct boot_ctx *c = p;
  printf("mway-stage1: booting stage 2 from slot %c%s: %s\n", 'a' + slot, trial ? " (trial)" : "", c->cmdline);
  fflush(stdout);
  if (c->no_exec) exit(0);
  sync();
  syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_KEXEC, NULL);
  printf("MILKYWAY: stage 2 slot %c: kexec failed: %s\n", 'a' + slot, strerror(errno));
}

static int cmd_boot(int argc, char **argv) {
  static struct boot_ctx c;
  memset(&c, 0, sizeof c);
  c.disk = argv[2];
  for (int i = 4; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--secure-boot") == 0) c.secure_boot = strcmp(argv[i + 1], "on") == 0;
    else if (strcmp(argv[i], "--no-exec") == 0) c.no_exec = argv[i + 1];
  }
  uint8_t *cb = NULL;
  size_t cn = 0;
  struct failure f;
  if (read_file(argv[3], &cb, &cn, 1 << 20) != 0) {
    printf("MILKYWAY: stage 1 config %s unusable: E_STAGE1_CONFIG: cannot read it\n", argv[3]);
    return 1;
  }
  if (parse_config(cb, cn, &c.cfg, &f) != 0) {
    printf("MILKYWAY: stage 1 config %s unusable: %s: %s\n", argv[3], f.code, f.msg);
    return 1;
  }
  c.fd = open(c.disk, O_RDWR | O_CLOEXEC);
  if (c.fd < 0 || gpt_find_slots(c.fd, BOOT_TYPE, &c.g, &f) != 0) {
    printf("MILKYWAY: no stage 2 slots on %s: %s: %s\n", c.disk, c.fd < 0 ? "E_GPT_OPEN" : f.code,
           c.fd < 0 ? strerror(errno) : f.msg);
    return 1;
  }
  struct slot_state st[2];
  for (int i = 0; i < 2; i++) {
    st[i] = slot_decode(c.g.attrs[i]);
    if (c.g.present[i])
      printf("mway-stage1: slot %c: priority %d, tries %d, successful %d\n", 'a' + i, st[i].priority, st[i].tries,
             st[i].successful);
  }
  struct slot_ops ops = {&c, b_write, b_verify, b_boot};
  slot_run(st, c.g.present, &ops);
  printf("MILKYWAY: no bootable stage 2 slot: E_SLOT_NONE\n");
  return 1;
}

/* ---- verify (host) ---- */

static int cmd_verify(char **argv) {
  uint8_t *cb, *img;
  size_t cn, n;
  struct config cfg;
  struct descriptor d;
  struct failure f;
  if (read_file(argv[2], &cb, &cn, 1 << 20) != 0) return printf("E_STAGE1_CONFIG: cannot read %s\n", argv[2]), 2;
  if (parse_config(cb, cn, &cfg, &f) != 0) return printf("%s: %s\n", f.code, f.msg), 1;
  if (read_file(argv[3], &img, &n, MAX_READ) != 0) return printf("E_DESC_TRUNCATED: cannot read %s\n", argv[3]), 1;
  if (verify_header(&cfg, img, n, n, &d, &f) != 0 || verify_parts(&d, img, n, &f) != 0)
    return printf("%s: %s\n", f.code, f.msg), 1;
  say_verified('-', &d);
  return 0;
}

/* ---- mutate (tests): flip each byte of IMAGE in turn, print the code that refuses it ---- */

static int cmd_mutate(char **argv) {
  uint8_t *cb, *img;
  size_t cn, n;
  struct config cfg;
  struct descriptor d;
  struct failure f;
  if (read_file(argv[2], &cb, &cn, 1 << 20) != 0 || parse_config(cb, cn, &cfg, &f) != 0) return 2;
  if (read_file(argv[3], &img, &n, MAX_READ) != 0) return 2;
  for (size_t i = 0; i < n; i++) {
    img[i] ^= 0x01;
    int bad = verify_header(&cfg, img, n, n, &d, &f) != 0 || verify_parts(&d, img, n, &f) != 0;
    printf("%s\n", bad ? f.code : "ACCEPTED");
    img[i] ^= 0x01;
  }
  return 0;
}

/* ---- plan (shared vectors) ---- */

struct plan_ctx {
  int ok[2];
};
static int p_write(void *p, int slot, struct slot_state s) {
  (void)p;
  printf("W %c %d %d %d ", 'a' + slot, s.priority, s.tries, s.successful);
  return 0;
}
static int p_verify(void *p, int slot, int trial) {
  (void)trial;
  struct plan_ctx *c = p;
  printf("V %c %d ", 'a' + slot, c->ok[slot]);
  return c->ok[slot];
}
static void p_boot(void *p, int slot, int trial) {
  (void)p;
  printf("B %c %d\n", 'a' + slot, trial);
  exit(0);
}

static int cmd_plan(char **argv) {
  struct slot_state st[2];
  int present[2] = {1, strcmp(argv[5], "-") != 0};
  struct plan_ctx c;
  for (int i = 0; i < 2; i++) {
    st[i].priority = present[i] ? atoi(argv[2 + 3 * i]) : 0;
    st[i].tries = present[i] ? atoi(argv[3 + 3 * i]) : 0;
    st[i].successful = present[i] ? atoi(argv[4 + 3 * i]) : 0;
    c.ok[i] = atoi(argv[8 + i]);
  }
  struct slot_ops ops = {&c, p_write, p_verify, p_boot};
  slot_run(st, present, &ops);
  printf("N\n");
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc >= 4 && strcmp(argv[1], "boot") == 0) return cmd_boot(argc, argv);
  if (argc == 4 && strcmp(argv[1], "verify") == 0) return cmd_verify(argv);
  if (argc == 10 && strcmp(argv[1], "plan") == 0) return cmd_plan(argv);
  if (argc == 4 && strcmp(argv[1], "mutate") == 0) return cmd_mutate(argv);
  fprintf(stderr,
          "usage: mway-stage1 boot DISK CONFIG [--secure-boot on|off] [--no-exec OUTDIR]\n"
          "       mway-stage1 verify CONFIG IMAGE\n"
          "       mway-stage1 plan PA TA SA PB TB SB VA VB\n");
  return 2;
}
