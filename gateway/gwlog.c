/* The record of every message the gateway checked (outcome, reason code, originator,
 * target, message code, counter, time), kept online for a configurable period, then
 * written to a signed archive file the operator keeps (at least seven years) and only
 * then pruned from the store.
 * gw.log: at(8, two's complement + 2^63: time order) seq(8) -> ver(1) verdict(1) cra(1)
 *         parsed(1) code(2) counter(8) originator(8) target(8) reason(1+n)
 * Archive: text, one JSON object a line (a header line, then the records), ending with
 *         "signature <hex of a DER ECDSA P-256/SHA-256 signature over every octet before
 *         that line>" (smki_signed_file_sign over LF text: openssl dgst verifies it too). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway_private.h"

#define LOG_V1 1
#define LOG_KEY 16
static const char SEQ_KEY[] = "log.seq";
static const char ARCHIVE_MAGIC[] = "{\"smki_gateway_archive\":1,";
static const char SIG_PREFIX[] = "signature ";

static uint64_t time_key(int64_t at)
{
    return (uint64_t)at ^ 0x8000000000000000ull;
}

int smki_gw_log_put(smki_txn *t, const gw_dbs *d, int64_t at, const smki_gw_result *r)
{
    const void *v;
    size_t vl;
    uint64_t seq = 0;
    int rc = smki_txn_get(t, d->meta, SEQ_KEY, sizeof SEQ_KEY - 1, &v, &vl);
    if (rc == 0) {
        ENSURE(vl == 8, SMKI_E_CORRUPT, "gateway log sequence record");
        seq = smki_get_be64(v);
    } else if (rc != SMKI_E_NOTFOUND) {
        return rc;
    }
    uint8_t sb[8];
    smki_put_be64(sb, seq + 1);
    GUARD(smki_txn_put(t, d->meta, SEQ_KEY, sizeof SEQ_KEY - 1, sb, 8, 0));
    uint8_t k[LOG_KEY], rec[40 + 64];
    smki_put_be64(k, time_key(at));
    smki_put_be64(k + 8, seq);
    size_t rl = strlen(r->reason);
    ENSURE(rl < 64, SMKI_E_INTERNAL, "reason code of %zu characters", rl);
    size_t o = 0;
    rec[o++] = LOG_V1;
    rec[o++] = (uint8_t)r->verdict;
    rec[o++] = r->cra;
    rec[o++] = (uint8_t)(r->parsed != 0);
    smki_put_be16(rec + o, r->code);
    o += 2;
    smki_put_be64(rec + o, r->counter), o += 8;
    memcpy(rec + o, r->originator.b, 8), o += 8;
    memcpy(rec + o, r->target.b, 8), o += 8;
    rec[o++] = (uint8_t)rl;
    memcpy(rec + o, r->reason, rl), o += rl;
    return smki_txn_put(t, d->log, k, sizeof k, rec, o, 0);
}

static int log_decode(const void *key, size_t klen, const void *val, size_t vlen, smki_gw_log_record *out)
{
    memset(out, 0, sizeof *out);
    ENSURE(klen == LOG_KEY, SMKI_E_CORRUPT, "gateway log key of %zu octets", klen);
    out->at = (int64_t)(smki_get_be64(key) ^ 0x8000000000000000ull);
    out->seq = smki_get_be64((const uint8_t *)key + 8);
    smki_cursor_t c = smki_cursor(val, vlen);
    uint8_t ver, verdict, cra, parsed, rl;
    if (smki_cur_u8(&c, &ver) < 0 || ver != LOG_V1 || smki_cur_u8(&c, &verdict) < 0 || verdict > 2 ||
        smki_cur_u8(&c, &cra) < 0 || smki_cur_u8(&c, &parsed) < 0 || smki_cur_u16be(&c, &out->code) < 0 ||
        smki_cur_u64be(&c, &out->counter) < 0 || smki_cur_copy(&c, out->originator.b, 8) < 0 ||
        smki_cur_copy(&c, out->target.b, 8) < 0 || smki_cur_u8(&c, &rl) < 0 || rl >= sizeof out->reason ||
        rl != c.left || smki_cur_copy(&c, out->reason, rl) < 0)
        return SMKI_FAIL(SMKI_E_CORRUPT, "gateway log record %" PRIu64 " is damaged", out->seq);
    out->reason[rl] = '\0';
    out->verdict = verdict;
    out->cra = cra;
    out->parsed = parsed;
    return 0;
}

/* ---- Listing ---------------------------------------------------------------------------------- */
typedef struct {
    gw_dbs d;
    int64_t before;
    smki_gw_log_fn fn;
    void *arg;
    /* archive: the keys read, to delete exactly those */
    uint8_t (*keys)[LOG_KEY];
    size_t n, cap;
    char *text;
    size_t text_len, text_cap;
    int64_t first, last;
} log_op;

static int list_scan(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    log_op *op = arg;
    smki_gw_log_record r;
    GUARD(log_decode(key, klen, val, vlen, &r));
    if (r.at >= op->before) return 1; /* time order: the rest is later */
    return op->fn(&r, op->arg) < 0 ? -1 : 0;
}

static int list_txn(smki_txn *t, void *arg)
{
    log_op *op = arg;
    return smki_txn_scan(t, op->d.log, NULL, 0, list_scan, op);
}

int smki_gw_log_list(smki_store *s, int64_t before, smki_gw_log_fn fn, void *arg)
{
    log_op op;
    memset(&op, 0, sizeof op);
    op.before = before;
    op.fn = fn;
    op.arg = arg;
    GUARD(smki_gw_dbs_get(s, &op.d));
    return smki_store_read(s, list_txn, &op);
}

/* ---- Archiving ---------------------------------------------------------------------------------- */
static int text_add(log_op *op, const char *s, size_t n)
{
    if (op->text_len + n + 1 > op->text_cap) {
        size_t cap = op->text_cap ? op->text_cap : 4096;
        while (cap < op->text_len + n + 1) cap *= 2;
        char *p = realloc(op->text, cap);
        ENSURE(p, SMKI_E_NOMEM, "archive of %zu octets", cap);
        op->text = p;
        op->text_cap = cap;
    }
    memcpy(op->text + op->text_len, s, n);
    op->text_len += n;
    op->text[op->text_len] = '\0';
    return 0;
}

int smki_gw_log_record_json(const smki_gw_log_record *r, char *out, size_t cap)
{
    static const char *const verdicts[] = {"passed", "rejected", "quarantined"};
    char oe[SMKI_EUI64_TEXT_MAX] = "", te[SMKI_EUI64_TEXT_MAX] = "";
    if (r->parsed) {
        smki_eui64_format(&r->originator, SMKI_EUI64_HYPHEN, oe);
        smki_eui64_format(&r->target, SMKI_EUI64_HYPHEN, te);
    }
    /* The reason is one of the gateway's static codes: letters, digits, '.', '-'. */
    int n = snprintf(out, cap,
                     "{\"at\":%" PRId64 ",\"seq\":%" PRIu64 ",\"verdict\":\"%s\",\"reason\":\"%s\",\"kind\":\"%s\","
                     "\"originator\":\"%s\",\"target\":\"%s\",\"message_code\":\"%04X\",\"counter\":%" PRIu64 "}\n",
                     r->at, r->seq, verdicts[r->verdict <= 2 ? r->verdict : 1], r->reason,
                     r->parsed ? smki_gbcs_cra_name(r->cra) : "unparsed", oe, te, r->code, r->counter);
    ENSURE(n > 0 && (size_t)n < cap, SMKI_E_INTERNAL, "log record as JSON: %d octets", n);
    return n;
}

static int archive_scan(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    log_op *op = arg;
    smki_gw_log_record r;
    GUARD(log_decode(key, klen, val, vlen, &r));
    if (r.at >= op->before) return 1;
    char line[512];
    int n = smki_gw_log_record_json(&r, line, sizeof line);
    GUARD(n);
    GUARD(text_add(op, line, (size_t)n));
    if (op->n == op->cap) {
        size_t cap = op->cap ? 2 * op->cap : 256;
        uint8_t(*keys)[LOG_KEY] = realloc(op->keys, cap * sizeof *keys);
        ENSURE(keys, SMKI_E_NOMEM, "archive keys");
        op->keys = keys;
        op->cap = cap;
    }
    memcpy(op->keys[op->n++], key, LOG_KEY);
    if (op->n == 1) op->first = r.at;
    op->last = r.at;
    return 0;
}

static int archive_read_txn(smki_txn *t, void *arg)
{
    log_op *op = arg;
    return smki_txn_scan(t, op->d.log, NULL, 0, archive_scan, op);
}

static int prune_txn(smki_txn *t, void *arg)
{
    log_op *op = arg;
    for (size_t i = 0; i < op->n; i++) {
        int rc = smki_txn_del(t, op->d.log, op->keys[i], LOG_KEY);
        if (rc == SMKI_E_NOTFOUND) {
            smki_error_clear(); /* pruned by another archive run meanwhile */
            continue;
        }
        GUARD(rc);
    }
    return 0;
}

int smki_gw_log_archive(smki_store *s, int64_t before, time_t now, smki_key *key, const char *path,
                        size_t *archived)
{
    *archived = 0;
    log_op op;
    memset(&op, 0, sizeof op);
    op.before = before;
    int rc = 0;
    GUARD(smki_gw_dbs_get(s, &op.d));
    char head[256];
    /* The header is completed once the records are known: write them after a placeholder. */
    GUARD_GOTO(smki_store_read(s, archive_read_txn, &op), out);
    if (op.n == 0) goto out; /* nothing older than the cut-off: no archive */
    char *records = op.text;
    size_t records_len = op.text_len;
    op.text = NULL;
    op.text_len = op.text_cap = 0;
    int hn = snprintf(head, sizeof head,
                      "%s\"created\":%lld,\"before\":%" PRId64 ",\"first\":%" PRId64 ",\"last\":%" PRId64
                      ",\"records\":%zu}\n",
                      ARCHIVE_MAGIC, (long long)now, before, op.first, op.last, op.n);
    rc = text_add(&op, head, (size_t)hn);
    if (rc == 0) rc = text_add(&op, records, records_len);
    free(records);
    GUARD_GOTO(rc, out);
    uint8_t sig[SMKI_SIG_MAX];
    size_t sig_len = sizeof sig;
    GUARD_GOTO(smki_signed_file_sign(key, (const uint8_t *)op.text, op.text_len, sig, &sig_len), out);
    char hex[2 * SMKI_SIG_MAX + 1];
    smki_hex_encode(sig, sig_len, hex, 0);
    GUARD_GOTO(text_add(&op, SIG_PREFIX, sizeof SIG_PREFIX - 1), out);
    GUARD_GOTO(text_add(&op, hex, 2 * sig_len), out);
    GUARD_GOTO(text_add(&op, "\n", 1), out);
    /* Durable first (temporary, fsync, rename; refused if the file exists), pruned after:
     * a crash between the two leaves the records in both places, never in neither. */
    GUARD_GOTO(smki_file_write_atomic(path, op.text, op.text_len, 0640, 1), out);
    GUARD_GOTO(smki_store_write(s, prune_txn, &op), out);
    *archived = op.n;
out:
    free(op.text);
    free(op.keys);
    return rc;
}

int smki_gw_archive_verify(const uint8_t *data, size_t len, EVP_PKEY *pub, size_t *records)
{
    *records = 0;
    ENSURE(len >= sizeof ARCHIVE_MAGIC - 1 && memcmp(data, ARCHIVE_MAGIC, sizeof ARCHIVE_MAGIC - 1) == 0,
           SMKI_E_INPUT, "not a smki gateway archive (no header line)");
    ENSURE(len >= 2 && data[len - 1] == '\n', SMKI_E_INPUT, "archive does not end with its signature line");
    size_t start = len - 1;
    while (start > 0 && data[start - 1] != '\n') start--;
    size_t line_len = len - 1 - start;
    ENSURE(start > 0 && line_len > sizeof SIG_PREFIX - 1 &&
               memcmp(data + start, SIG_PREFIX, sizeof SIG_PREFIX - 1) == 0,
           SMKI_E_INPUT, "the archive's last line is not its signature");
    const char *hex = (const char *)data + start + sizeof SIG_PREFIX - 1;
    size_t hex_len = line_len - (sizeof SIG_PREFIX - 1);
    uint8_t sig[SMKI_SIG_MAX];
    size_t sig_len = 0;
    ENSURE(hex_len <= 2 * SMKI_SIG_MAX && smki_hex_decode(hex, hex_len, sig, sizeof sig, &sig_len) == 0, SMKI_E_INPUT,
           "the archive's signature is not hex of at most %d octets", SMKI_SIG_MAX);
    int rc = smki_signed_file_verify(pub, data, start, sig, sig_len);
    if (rc == SMKI_E_VERIFY)
        return SMKI_FAIL(SMKI_E_VERIFY, "the archive's signature does not verify: changed, or signed by another key");
    GUARD(rc);
    /* Lines between the header and the signature are the records; the header says how many. */
    size_t lines = 0;
    for (size_t i = 0; i < start; i++) lines += data[i] == '\n';
    static const char field[] = "\"records\":";
    size_t head_end = 0;
    while (head_end < start && data[head_end] != '\n') head_end++;
    unsigned long long want = 0;
    int found = 0;
    for (size_t i = 0; !found && i + sizeof field - 1 < head_end; i++) {
        if (memcmp(data + i, field, sizeof field - 1) != 0) continue;
        found = 1;
        for (size_t k = i + sizeof field - 1; k < head_end && data[k] >= '0' && data[k] <= '9' && want < (1ull << 40);
             k++)
            want = want * 10 + (unsigned)(data[k] - '0');
    }
    ENSURE(found, SMKI_E_INPUT, "the archive header has no record count");
    ENSURE(lines >= 1 && want == lines - 1, SMKI_E_INPUT, "the archive header says %llu records, it holds %zu", want,
           lines ? lines - 1 : 0);
    *records = lines - 1;
    return 0;
}
