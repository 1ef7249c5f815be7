/*
 * mway-user-avc: hands one USER_AVC record to the kernel's audit subsystem, as libaudit's
 * audit_log_user_avc_message() does for dbus-daemon and every other SELinux object manager
 * in userspace (linux/audit.h AUDIT_USER_AVC, a netlink message on NETLINK_AUDIT). Node has
 * no netlink sockets, so the agent runs this for each denial it decides on its local D-Bus
 * API (agent/dbus/dbus-access.ts). Without auditd the kernel prints the record on its log
 * and console (kernel/audit.c kauditd_printk_skb), where the kernel's own AVC records are, and
 * the agent's denial count (agent/core/avc-denials.ts) reads it there: a kernel record, not
 * one any process could write to /dev/kmsg. The kernel takes USER_AVC even with audit
 * disabled (audit_receive_msg) from a sender with CAP_AUDIT_WRITE in the initial user
 * namespace; SELinux asks for netlink_audit_socket nlmsg_relay.
 *
 *   mway-user-avc MESSAGE    exit 0 when the kernel acknowledged it, 1 with the reason else
 *
 * Built static by the image builder with Debian's gcc (imagebuild/coreos-tree.ts).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* The kernel's own cap on a user record's text (MAX_AUDIT_MESSAGE_LENGTH less the header). */
#define MAX_TEXT 8000

int main(int argc, char **argv) {
  if (argc != 2) {
    fputs("usage: mway-user-avc MESSAGE\n", stderr);
    return 2;
  }
  size_t len = strlen(argv[1]);
  if (len == 0 || len > MAX_TEXT) {
    fprintf(stderr, "mway-user-avc: the message is %zu bytes (1 to %d)\n", len, MAX_TEXT);
    return 2;
  }
  static struct {
    struct nlmsghdr h;
    char text[MAX_TEXT + 1];
  } req;
  req.h.nlmsg_len = NLMSG_LENGTH(len + 1);
  req.h.nlmsg_type = AUDIT_USER_AVC;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  req.h.nlmsg_seq = 1;
  memcpy(NLMSG_DATA(&req.h), argv[1], len + 1);

  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_AUDIT);
  if (fd < 0) {
    fprintf(stderr, "mway-user-avc: socket(NETLINK_AUDIT): %s\n", strerror(errno));
    return 1;
  }
  struct timeval tv = {.tv_sec = 5};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  if (sendto(fd, &req, req.h.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) {
    fprintf(stderr, "mway-user-avc: send: %s\n", strerror(errno));
    return 1;
  }
  /* The acknowledgement: an NLMSG_ERROR whose error is 0, or the kernel's refusal. */
  static char buf[8192];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      fprintf(stderr, "mway-user-avc: no acknowledgement: %s\n", strerror(errno));
      return 1;
    }
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_seq != 1 || h->nlmsg_type != NLMSG_ERROR) continue;
      if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr))) {
        fputs("mway-user-avc: a short acknowledgement\n", stderr);
        return 1;
      }
      int err = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
      if (err == 0) return 0;
      fprintf(stderr, "mway-user-avc: the kernel refused the record: %s\n", strerror(-err));
      return 1;
    }
  }
}
