/* Group commits of concurrent direct issuances. A service answers several enrolments
 * at once (the enrolment service's threads); each is one RA action with its own audit
 * entry, and each would cost its own durable commit and its own anchor write. Here the
 * actions that arrive while a commit is in progress wait, and the next commit takes
 * them all: one write transaction holds each action with its entry (in arrival order,
 * chained as ever) and one commit makes them durable. Each caller then anchors the head
 * (smki_ra_anchor) before it returns; anchors of callers that committed together, or while
 * an anchor was being written, are one write (the first signs the latest head, which
 * covers the others). An action that fails in a
 * group fails the group's transaction (nothing of it is written); then each action of
 * that group runs alone, in its own transaction, so that one refusal refuses only its
 * own action (with its own message). The audit guarantees are those of smki_ra_act_via:
 * no action without its entry in its transaction, and no caller told "done" before
 * the anchor covers its entry. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ra_private.h"

struct ra_group_item {
    const smki_ra_actor *by;
    const char *via;
    ra_act_fn fn;
    void *arg;
    int rc, done;
    char msg[SMKI_ERR_MSG_MAX];
    struct ra_group_item *next;
};

typedef struct {
    smki_ra *ra;
    ra_group_item *items;
} group_run;

/* Every action of the group, with its entry, in one transaction: the first failure
 * ends it (nothing written). */
static int group_txn(smki_txn *t, void *arg)
{
    group_run *g = arg;
    for (ra_group_item *it = g->items; it; it = it->next) GUARD(smki_ra_act_in_via(t, g->ra, it->by, it->via, it->fn, it->arg));
    return 0;
}

static int one_txn(smki_txn *t, void *arg)
{
    group_run *g = arg;
    return smki_ra_act_in_via(t, g->ra, g->items->by, g->items->via, g->items->fn, g->items->arg);
}

static void note_outcome(ra_group_item *it, int rc)
{
    it->rc = rc;
    it->msg[0] = '\0';
    if (rc < 0) snprintf(it->msg, sizeof it->msg, "%s", smki_error_msg());
    smki_error_clear();
}

/* The leader's work: the group committed together, or each alone. */
static void run_group(smki_ra *ra, ra_group_item *items)
{
    int together = 0;
    if (items->next) {
        group_run g = {ra, items};
        together = smki_store_write(ra->store, group_txn, &g) == 0;
        smki_error_clear(); /* a failure is found again, and reported, by its action alone */
    }
    for (ra_group_item *it = items; it; it = it->next) {
        if (together) {
            note_outcome(it, 0);
            continue;
        }
        ra_group_item alone = *it;
        alone.next = NULL;
        group_run g = {ra, &alone};
        note_outcome(it, smki_store_write(ra->store, one_txn, &g));
    }
}

void smki_ra_group_expect(smki_ra *ra)
{
    pthread_mutex_lock(&ra->group_lock);
    ra->group_preparing++;
    pthread_mutex_unlock(&ra->group_lock);
}

static void unexpect_locked(smki_ra *ra)
{
    if (ra->group_preparing) ra->group_preparing--;
    pthread_cond_broadcast(&ra->group_done); /* a leader waiting for it looks again */
}

void smki_ra_group_unexpect(smki_ra *ra)
{
    pthread_mutex_lock(&ra->group_lock);
    unexpect_locked(ra);
    pthread_mutex_unlock(&ra->group_lock);
}

/* The leader, before it takes the group: actions on their way join it, for at most
 * RA_GROUP_LINGER_US (two clients' enrolments prepared side by side share a commit
 * instead of paying one each). Under group_lock. */
static void linger(smki_ra *ra)
{
    if (!ra->group_preparing) return;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += RA_GROUP_LINGER_US * 1000L;
    if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
    while (ra->group_preparing)
        if (pthread_cond_timedwait(&ra->group_done, &ra->group_lock, &until) != 0) break;
}

int smki_ra_act_grouped(smki_ra *ra, const smki_ra_actor *by, const char *via, ra_act_fn fn, void *arg)
{
    if (!by || !by->name || !by->key) {
        smki_ra_group_unexpect(ra);
        return SMKI_FAIL(SMKI_E_USAGE, "no operator: every RA action is taken by a registered operator with their own "
                                       "key (--operator NAME --operator-key KEY)");
    }
    ra_group_item self;
    memset(&self, 0, sizeof self);
    self.by = by, self.via = via, self.fn = fn, self.arg = arg;
    pthread_mutex_lock(&ra->group_lock);
    if (ra->group_tail) ra->group_tail->next = &self;
    else ra->group_head = &self;
    ra->group_tail = &self;
    unexpect_locked(ra); /* its smki_ra_group_expect, if any, ends here: it is queued */
    while (!self.done && ra->group_busy) pthread_cond_wait(&ra->group_done, &ra->group_lock);
    if (!self.done) {
        /* No commit in progress: this thread leads the next, with every action waiting
         * and those on their way. */
        ra->group_busy = 1;
        linger(ra);
        ra_group_item *items = ra->group_head;
        ra->group_head = ra->group_tail = NULL;
        pthread_mutex_unlock(&ra->group_lock);
        run_group(ra, items);
        pthread_mutex_lock(&ra->group_lock);
        for (ra_group_item *it = items, *next; it; it = next) {
            next = it->next; /* a follower's item is its stack: read before it may return */
            it->done = 1;
        }
        ra->group_busy = 0;
        pthread_cond_broadcast(&ra->group_done);
    }
    pthread_mutex_unlock(&ra->group_lock);
    if (self.rc < 0) return SMKI_FAIL(self.rc, "%s", self.msg);
    /* Committed. The anchor is written by each caller, outside the group, while the next
     * group commits: the first to take the anchor's lock signs the head as it is then,
     * which covers every action committed so far, and the others find their entry
     * anchored already (smki_ra_anchor). None returns before its entry is anchored. */
    return smki_ra_anchor(ra);
}
