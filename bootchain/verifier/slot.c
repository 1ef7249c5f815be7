/* Stage 1's slot plan (bootchain/slot.ts; test/bootchain/slot-vectors.json): highest
 * bootable priority first, a before b on a tie; a trial slot's tries are written down before
 * it is verified; a slot that fails gets priority 0 and the next one is tried. */
#include "stage1.h"

struct slot_state slot_decode(uint64_t a) {
  struct slot_state s = {(int)((a >> 48) & 15), (int)((a >> 52) & 15), (int)((a >> 56) & 1)};
  return s;
}

uint64_t slot_encode(uint64_t a, struct slot_state s) {
  a &= ~((15ull << 48) | (15ull << 52) | (1ull << 56));
  return a | (uint64_t)(s.priority & 15) << 48 | (uint64_t)(s.tries & 15) << 52 | (uint64_t)(s.successful & 1) << 56;
}

static int will_boot(struct slot_state s) { return s.priority > 0 && (s.tries > 0 || s.successful); }

void slot_run(struct slot_state st[2], const int present[2], const struct slot_ops *ops) {
  for (;;) {
    int best = -1;
    for (int i = 0; i < 2; i++)
      if (present[i] && will_boot(st[i]) && (best < 0 || st[i].priority > st[best].priority)) best = i;
    if (best < 0) return;
    int trial = !st[best].successful;
    if (trial) {
      st[best].tries--;
      /* A trial whose count cannot be written down could boot forever: refuse it. */
      if (ops->write(ops->ctx, best, st[best]) != 0) {
        st[best].priority = 0;
        continue;
      }
    }
    if (ops->verify(ops->ctx, best, trial)) {
      ops->boot(ops->ctx, best, trial);
    }
    st[best].priority = 0;
    ops->write(ops->ctx, best, st[best]);
  }
}
