/*
 * mway-sandbox-exec: runs one command inside a running sandbox with exactly its service's
 * credentials, and runs nothing of the sandbox's root before they are dropped. It is what
 * `nsenter --target PID … -- setpriv … -- CMD` did, minus that hole: nsenter entered the
 * root and then ran the setpriv (and the loader and libc) it found there with the agent's full
 * root credentials, so a layer shipping its own /usr/bin/setpriv got root code in its
 * namespaces. Here, all of it is this static binary, opened from CoreOS before entering:
 *
 *   1. opens the target's namespaces, root and (with --follow-context) SELinux context,
 *   2. enters them (user first, as nsenter does), chroots into the target's root,
 *   3. forks (a new PID namespace counts for children only) and, in the child: sets the
 *      supplementary groups, gid and uid, keeps exactly the given capabilities (bounding,
 *      inheritable, ambient; permitted and effective for uid 0), no_new_privs, the exec
 *      context, and only then execs CMD (a PATH lookup inside the root),
 *   4. the parent waits and exits with the child's status (128 + signal when killed).
 *
 *   mway-sandbox-exec --target=PID [--user] [--follow-context] --uid=N --gid=N
 *                     [--groups=a,b] [--caps=CAP_X,CAP_Y] [--wd=DIR] -- CMD [ARG…]
 *
 * Exit 125 with the reason on stderr when it cannot enter or drop, 127 when CMD is not found.
 * Built static by the image builder with Debian's gcc (imagebuild/coreos-tree.ts).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

/* capability(7) numbers, as linux/capability.h defines them (CAP_CHECKPOINT_RESTORE = 40). */
static const char *const CAPS[] = {
    "CAP_CHOWN",           "CAP_DAC_OVERRIDE",   "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
    "CAP_FSETID",          "CAP_KILL",           "CAP_SETGID",          "CAP_SETUID",
    "CAP_SETPCAP",         "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",       "CAP_NET_RAW",        "CAP_IPC_LOCK",        "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",      "CAP_SYS_RAWIO",      "CAP_SYS_CHROOT",      "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",       "CAP_SYS_ADMIN",      "CAP_SYS_BOOT",        "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",    "CAP_SYS_TIME",       "CAP_SYS_TTY_CONFIG",  "CAP_MKNOD",
    "CAP_LEASE",           "CAP_AUDIT_WRITE",    "CAP_AUDIT_CONTROL",   "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",    "CAP_MAC_ADMIN",      "CAP_SYSLOG",          "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",   "CAP_AUDIT_READ",     "CAP_PERFMON",         "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
};
#define NCAPS ((int)(sizeof CAPS / sizeof CAPS[0]))
#define MAX_GROUPS 64

static _Noreturn void die(const char *what) {
  fprintf(stderr, "mway-sandbox-exec: %s: %s\n", what, strerror(errno));
  exit(125);
}

static _Noreturn void usage(const char *why) {
  fprintf(stderr, "mway-sandbox-exec: %s\n", why);
  exit(125);
}

static long number(const char *s, const char *what) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || *s == '\0' || *end != '\0' || v < 0 || v > 0x7fffffff) usage(what);
  return v;
}

static int open_ns(long pid, const char *ns) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%ld/ns/%s", pid, ns);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die(path);
  return fd;
}

/* Whether namespace `ns` of `pid` is this process's own (setns into one's own user namespace fails). */
static int same_ns(long pid, const char *ns) {
  char a[64], b[64], la[64] = {0}, lb[64] = {0};
  snprintf(a, sizeof a, "/proc/%ld/ns/%s", pid, ns);
  snprintf(b, sizeof b, "/proc/self/ns/%s", ns);
  if (readlink(a, la, sizeof la - 1) < 0 || readlink(b, lb, sizeof lb - 1) < 0) die(a);
  return strcmp(la, lb) == 0;
}

int main(int argc, char **argv) {
  long target = -1, uid = -1, gid = -1;
  int user = 0, follow = 0;
  const char *groups = "", *caps = "", *wd = "/";
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    } else if (strncmp(a, "--target=", 9) == 0)
      target = number(a + 9, "--target is not a pid");
    else if (strncmp(a, "--uid=", 6) == 0)
      uid = number(a + 6, "--uid is not a number");
    else if (strncmp(a, "--gid=", 6) == 0)
      gid = number(a + 6, "--gid is not a number");
    else if (strncmp(a, "--groups=", 9) == 0)
      groups = a + 9;
    else if (strncmp(a, "--caps=", 7) == 0)
      caps = a + 7;
    else if (strncmp(a, "--wd=", 5) == 0)
      wd = a + 5;
    else if (strcmp(a, "--user") == 0)
      user = 1;
    else if (strcmp(a, "--follow-context") == 0)
      follow = 1;
    else
      usage("unknown option (see the comment at the top of agent/services/sandbox-exec.c)");
  }
  if (target < 1 || uid < 0 || gid < 0 || i >= argc) usage("needs --target, --uid, --gid and -- CMD");

  gid_t gids[MAX_GROUPS];
  int ngids = 0;
  for (char *list = strdupa(groups), *tok; (tok = strsep(&list, ",")) != NULL;) {
    if (*tok == '\0') continue;
    if (ngids == MAX_GROUPS) usage("more than 64 --groups");
    gids[ngids++] = (gid_t)number(tok, "--groups holds a non-number");
  }
  unsigned long long keep = 0;
  for (char *list = strdupa(caps), *tok; (tok = strsep(&list, ",")) != NULL;) {
    if (*tok == '\0') continue;
    int n = 0;
    while (n < NCAPS && strcasecmp(tok, CAPS[n]) != 0) n++;
    if (n == NCAPS) usage("--caps names an unknown capability");
    keep |= 1ULL << n;
  }

  char context[512] = {0};
  if (follow) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/attr/current", target);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) die(path);
    ssize_t n = read(fd, context, sizeof context - 1);
    if (n <= 0) die(path);
    while (n > 0 && (context[n - 1] == '\0' || context[n - 1] == '\n')) context[--n] = '\0';
    close(fd);
  }
  /* Everything is opened before the first setns: after entering, /proc is the sandbox's. */
  int userfd = user && !same_ns(target, "user") ? open_ns(target, "user") : -1;
  static const char *const NS[] = {"ipc", "uts", "net", "pid", "mnt"};
  int nsfd[5];
  for (int k = 0; k < 5; k++) nsfd[k] = open_ns(target, NS[k]);
  char rootpath[64];
  snprintf(rootpath, sizeof rootpath, "/proc/%ld/root", target);
  int rootfd = open(rootpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) die(rootpath);
  if (follow) {
    /* The exec context is kept across fork; written while /proc is still the agent's. */
    int fd = open("/proc/thread-self/attr/exec", O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, context, strlen(context)) < 0) die("setexeccon");
    close(fd);
  }

  if (userfd >= 0 && setns(userfd, CLONE_NEWUSER) < 0) die("setns user");
  for (int k = 0; k < 5; k++)
    if (setns(nsfd[k], 0) < 0) die(NS[k]);
  if (fchdir(rootfd) < 0 || chroot(".") < 0) die("chroot");
  if (chdir(wd) < 0) die("chdir");

  pid_t child = fork();
  if (child < 0) die("fork");
  if (child > 0) {
    int status;
    while (waitpid(child, &status, 0) < 0)
      if (errno != EINTR) die("waitpid");
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  /* The child: drop to the service's credentials, then exec. */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) die("pdeathsig");
  if (setgroups((size_t)ngids, gids) < 0) die("setgroups");
  for (int n = 0; n <= CAP_LAST_CAP && n < 64; n++)
    if (!(keep & (1ULL << n)) && prctl(PR_CAPBSET_DROP, n, 0, 0, 0) < 0 && errno != EINVAL)
      die("drop the bounding set");
  if (prctl(PR_SET_KEEPCAPS, 1) < 0) die("keepcaps");
  if (setresgid((gid_t)gid, (gid_t)gid, (gid_t)gid) < 0) die("setgid");
  if (setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) < 0) die("setuid");
  struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct d[2] = {{0}};
  d[0].effective = d[0].permitted = d[0].inheritable = (unsigned)(keep & 0xffffffffu);
  d[1].effective = d[1].permitted = d[1].inheritable = (unsigned)(keep >> 32);
  if (syscall(SYS_capset, &h, d) < 0) die("capset");
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0) die("clear ambient");
  /* Ambient capabilities make a non-root uid keep them over exec, as setpriv --ambient-caps. */
  if (uid != 0)
    for (int n = 0; n < 64; n++)
      if ((keep & (1ULL << n)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, n, 0, 0) < 0)
        die("raise ambient");
  if (prctl(PR_SET_KEEPCAPS, 0) < 0) die("keepcaps");
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) die("no_new_privs");
  execvp(argv[i], &argv[i]);
  fprintf(stderr, "mway-sandbox-exec: %s: %s\n", argv[i], strerror(errno));
  _exit(errno == ENOENT ? 127 : 126);
}
