/* The GPT reads and writes stage 1 needs (UEFI 2.10 §5.3): find boot-a / boot-b by type GUID
 * and name, check both headers and entry arrays (CRC32s, LBAs, shapes) before trusting them,
 * and rewrite one entry's attributes in both copies — backup first, primary last, fsync after
 * each — the same steps as formats/gpt/gpt-entries-write.ts. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stage1.h"

#define MAX_ENTRIES 1024u

struct gpt_copy {
  uint8_t hdr[4096];
  uint8_t *entries;
  uint64_t my_lba, alt_lba, entries_lba;
  uint32_t count, esize, hsize;
};

static uint32_t u32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t u64(const uint8_t *p) { return (uint64_t)u32(p) | (uint64_t)u32(p + 4) << 32; }
static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static int read_at(int fd, void *buf, size_t n, uint64_t off) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = pread(fd, (uint8_t *)buf + got, n - got, (off_t)(off + got));
    if (r <= 0) return -1;
    got += (size_t)r;
  }
  return 0;
}
static int write_at(int fd, const void *buf, size_t n, uint64_t off) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = pwrite(fd, (const uint8_t *)buf + done, n - done, (off_t)(off + done));
    if (r <= 0) return -1;
    done += (size_t)r;
  }
  return 0;
}

static uint64_t disk_bytes(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return 0;
  if (S_ISBLK(st.st_mode)) {
    uint64_t n = 0;
    return ioctl(fd, BLKGETSIZE64, &n) == 0 ? n : 0;
  }
  return (uint64_t)st.st_size;
}

static uint32_t sector_size(int fd) {
  struct stat st;
  int ss = 512;
  if (fstat(fd, &st) == 0 && S_ISBLK(st.st_mode) && ioctl(fd, BLKSSZGET, &ss) != 0) ss = 512;
  return ss == 512 || ss == 4096 ? (uint32_t)ss : 0;
}

static int load(int fd, uint32_t ss, uint64_t lba, uint64_t total, struct gpt_copy *g, struct failure *f) {
  g->entries = NULL;
  if (read_at(fd, g->hdr, ss, lba * ss) != 0) return fail(f, "E_GPT_TRUNCATED", "cannot read the GPT header at LBA %llu", (unsigned long long)lba), -1;
  if (memcmp(g->hdr, "EFI PART", 8) != 0) return fail(f, "E_GPT_MAGIC", "no GPT header at LBA %llu", (unsigned long long)lba), -1;
  g->hsize = u32(g->hdr + 12);
  if (g->hsize < 92 || g->hsize > ss) return fail(f, "E_GPT_HEADER_SIZE", "GPT header size %u", g->hsize), -1;
  uint32_t want = u32(g->hdr + 16);
  uint8_t copy[4096];
  memcpy(copy, g->hdr, g->hsize);
  put32(copy + 16, 0);
  if (crc32_ieee(copy, g->hsize) != want) return fail(f, "E_GPT_HEADER_CRC", "GPT header CRC32 at LBA %llu is wrong", (unsigned long long)lba), -1;
  g->my_lba = u64(g->hdr + 24);
  g->alt_lba = u64(g->hdr + 32);
  g->entries_lba = u64(g->hdr + 72);
  g->count = u32(g->hdr + 80);
  g->esize = u32(g->hdr + 84);
  if (g->my_lba != lba) return fail(f, "E_GPT_HEADER_LBA", "GPT header at LBA %llu says it is elsewhere", (unsigned long long)lba), -1;
  if (g->count == 0 || g->count > MAX_ENTRIES || g->esize < 128 || g->esize > 1024 || g->esize % 8 != 0)
    return fail(f, "E_GPT_ENTRY_SHAPE", "GPT has %u entries of %u bytes", g->count, g->esize), -1;
  size_t bytes = (size_t)g->count * g->esize;
  if (g->entries_lba < 1 || g->entries_lba + (bytes + ss - 1) / ss > total)
    return fail(f, "E_GPT_ENTRY_RANGE", "GPT entries lie outside the disk"), -1;
  g->entries = malloc(bytes);
  if (!g->entries || read_at(fd, g->entries, bytes, g->entries_lba * ss) != 0)
    return fail(f, "E_GPT_TRUNCATED", "cannot read the GPT entries"), -1;
  if (crc32_ieee(g->entries, bytes) != u32(g->hdr + 88)) return fail(f, "E_GPT_ENTRIES_CRC", "GPT entry array CRC32 is wrong"), -1;
  return 0;
}

static int load_both(int fd, struct gpt_copy *p, struct gpt_copy *b, uint32_t *ssp, struct failure *f) {
  uint32_t ss = sector_size(fd);
  uint64_t bytes = disk_bytes(fd);
  if (ss == 0 || bytes < 67ull * ss) return fail(f, "E_GPT_TRUNCATED", "the disk is too small for GPT"), -1;
  uint64_t total = bytes / ss;
  *ssp = ss;
  b->entries = NULL;
  if (load(fd, ss, 1, total, p, f) != 0) return -1;
  if (p->alt_lba >= total) return fail(f, "E_GPT_BACKUP", "the backup GPT header lies beyond the disk"), -1;
  if (load(fd, ss, p->alt_lba, total, b, f) != 0) {
    f->code = "E_GPT_BACKUP";
    return -1;
  }
  if (b->count != p->count || b->esize != p->esize || memcmp(b->entries, p->entries, (size_t)p->count * p->esize) != 0)
    return fail(f, "E_GPT_BACKUP", "the backup GPT's entries differ from the primary's"), -1;
  return 0;
}

/* "boot-a" / "boot-b" in a 72-byte UTF-16LE name field; -1 otherwise. */
static int slot_of_name(const uint8_t *name) {
  static const char base[] = "boot-";
  for (int i = 0; i < 5; i++)
    if (name[2 * i] != (uint8_t)base[i] || name[2 * i + 1] != 0) return -1;
  if (name[11] != 0 || (name[10] != 'a' && name[10] != 'b')) return -1;
  for (int i = 12; i < 72; i++)
    if (name[i] != 0) return -1;
  return name[10] - 'a';
}

int gpt_find_slots(int fd, const uint8_t type[16], struct gpt_slots *g, struct failure *f) {
  struct gpt_copy p, b;
  memset(g, 0, sizeof *g);
  int rc = load_both(fd, &p, &b, &g->sector, f);
  if (rc == 0) {
    for (uint32_t i = 0; i < p.count; i++) {
      const uint8_t *e = p.entries + (size_t)i * p.esize;
      if (memcmp(e, type, 16) != 0) continue;
      int s = slot_of_name(e + 56);
      if (s < 0 || g->present[s]) continue;
      g->present[s] = 1;
      g->index[s] = i + 1;
      g->first_lba[s] = u64(e + 32);
      g->last_lba[s] = u64(e + 40);
      g->attrs[s] = u64(e + 48);
      if (g->last_lba[s] < g->first_lba[s] || g->last_lba[s] >= p.alt_lba) {
        rc = -1;
        fail(f, "E_GPT_PART_RANGE", "boot-%c spans a bad LBA range", 'a' + s);
        break;
      }
    }
    if (rc == 0 && !g->present[0]) rc = -1, fail(f, "E_SLOT_MISSING", "no boot-a partition of the MilkyWay boot type");
  }
  free(p.entries);
  free(b.entries);
  return rc;
}

int gpt_write_attrs(int fd, uint32_t sector, uint32_t index, uint64_t attrs, struct failure *f) {
  struct gpt_copy p, b;
  uint32_t ss;
  int rc = load_both(fd, &p, &b, &ss, f);
  if (rc == 0 && (ss != sector || index < 1 || index > p.count)) rc = -1, fail(f, "E_GPT_PART_RANGE", "no entry %u", index);
  struct gpt_copy *order[2] = {&b, &p};
  for (int i = 0; rc == 0 && i < 2; i++) {
    struct gpt_copy *g = order[i];
    size_t bytes = (size_t)g->count * g->esize;
    put64(g->entries + (size_t)(index - 1) * g->esize + 48, attrs);
    put32(g->hdr + 88, crc32_ieee(g->entries, bytes));
    put32(g->hdr + 16, 0);
    put32(g->hdr + 16, crc32_ieee(g->hdr, g->hsize));
    if (write_at(fd, g->entries, bytes, g->entries_lba * ss) != 0 || write_at(fd, g->hdr, ss, g->my_lba * ss) != 0 ||
        fsync(fd) != 0)
      rc = -1, fail(f, "E_GPT_WRITE", "cannot write the GPT: %s", strerror(errno));
  }
  free(p.entries);
  free(b.entries);
  return rc;
}
