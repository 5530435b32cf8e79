/* base: what every smki module shares and nothing else: the error context and its
 * guard macros, the bounded cursor for bytes from outside, hex, and careful file I/O.
 * It knows nothing of keys, certificates or stores. */
#ifndef SMKI_BASE_H
#define SMKI_BASE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* A fallible public function's status must be looked at: ignoring it is a compile
 * error in developer builds (-Werror). */
#define SMKI_MUST_CHECK __attribute__((warn_unused_result))

/* ---- Errors (after s2n-tls) -------------------------------------------------
 * Every fallible function returns int: 0 on success, one of these (negative) on
 * failure, having recorded what failed and with which input in the thread's error
 * context. Pointer-returning functions return NULL and record the same way. */
typedef enum {
    SMKI_OK = 0,
    SMKI_E_USAGE = -1,     /* the caller asked for something malformed (bad option, bad EUI-64 text) */
    SMKI_E_INPUT = -2,     /* bytes from outside are malformed (DER, hex, PEM, lengths) */
    SMKI_E_REFUSED = -3,   /* well-formed but not allowed by policy */
    SMKI_E_VERIFY = -4,    /* a signature, MAC or chain did not verify */
    SMKI_E_NOTFOUND = -5,  /* a named key, token, record or file does not exist */
    SMKI_E_EXISTS = -6,    /* refused to replace something that exists */
    SMKI_E_HSM = -7,       /* the token or PKCS#11 module failed */
    SMKI_E_STORE = -8,     /* the LMDB store failed */
    SMKI_E_IO = -9,        /* file system */
    SMKI_E_NOMEM = -10,
    SMKI_E_CRYPTO = -11,   /* OpenSSL failed where it should not */
    SMKI_E_LOCKED = -12,   /* a resource is held by another process */
    SMKI_E_CORRUPT = -13,  /* stored data is damaged or of an unknown version */
    SMKI_E_INTERNAL = -14, /* a bug: an invariant did not hold */
} smki_err;

#define SMKI_ERR_MSG_MAX 768

/* The thread's last error. */
SMKI_MUST_CHECK int smki_error_code(void);
const char *smki_error_msg(void);
const char *smki_error_origin(void);      /* "file.c:123" where it was raised */
const char *smki_error_name(int code);    /* stable token for --json: "input", "hsm", ... */
SMKI_MUST_CHECK int smki_error_exit_code(int code);       /* 0 ok, 1 usage, 2 refused/failed check, 3 internal/HSM */
void smki_error_clear(void);

/* Record an error; returns code so that `return smki_fail(...)` reads naturally. */
int smki_fail_at(int code, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Same, with OpenSSL's error queue (drained) appended to the message. */
int smki_fail_ssl_at(int code, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Prefix the current message with context ("loading key X: <message>"); returns
 * the current code. Used by callers that add what they were doing. */
int smki_error_wrap(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The value of SMKI_FAIL is its code itself, not what the call returns: with a constant
 * code the compiler sees the failure's value (as s2n-tls's POSIX_BAIL returns its
 * constant), and with any code that it is negative (smki_failure), so it knows that a
 * function which fails returns a negative number and that a caller's GUARD leaves on
 * it: out-parameters set only on success are not "maybe used uninitialised" at -O3.
 * code is evaluated twice: pass a constant or a variable. A helper that maps another
 * library's failure to a code returns smki_failure(code) for the same reason. */
static inline int smki_failure(int code)
{
    return code < 0 ? code : SMKI_E_INTERNAL; /* every failure is negative, and the compiler sees it */
}
static inline int smki_fail_value(int recorded, int code)
{
    (void)recorded;
    return smki_failure(code);
}
#define SMKI_FAIL(code, ...) smki_fail_value(smki_fail_at((code), __FILE__, __LINE__, __VA_ARGS__), (code))
#define SMKI_FAIL_SSL(code, ...) smki_fail_value(smki_fail_ssl_at((code), __FILE__, __LINE__, __VA_ARGS__), (code))

/* Guard macros keep the happy path straight. GUARD propagates a failure;
 * ENSURE raises one when a condition does not hold. The _GOTO forms set `rc` and
 * jump to a cleanup label for functions that own resources. */
#define GUARD(expr)                                                      \
    do {                                                                 \
        int guard_rc_ = (expr);                                          \
        if (guard_rc_ < 0) return guard_rc_;                             \
    } while (0)
#define GUARD_GOTO(expr, label)                                          \
    do {                                                                 \
        rc = (expr);                                                     \
        if (rc < 0) goto label;                                          \
    } while (0)
#define ENSURE(cond, code, ...)                                          \
    do {                                                                 \
        if (!(cond)) return SMKI_FAIL((code), __VA_ARGS__);              \
    } while (0)
#define ENSURE_GOTO(cond, code, label, ...)                              \
    do {                                                                 \
        if (!(cond)) {                                                   \
            rc = SMKI_FAIL((code), __VA_ARGS__);                         \
            goto label;                                                  \
        }                                                                \
    } while (0)
/* For OpenSSL calls that return 1 on success. */
#define ENSURE_SSL(cond, code, ...)                                      \
    do {                                                                 \
        if (!(cond)) return SMKI_FAIL_SSL((code), __VA_ARGS__);          \
    } while (0)
#define ENSURE_SSL_GOTO(cond, code, label, ...)                          \
    do {                                                                 \
        if (!(cond)) {                                                   \
            rc = SMKI_FAIL_SSL((code), __VA_ARGS__);                     \
            goto label;                                                  \
        }                                                                \
    } while (0)

/* ---- Bounded cursor ----------------------------------------------------------
 * Every parser of outside bytes reads through one of these. A read past the end
 * fails (SMKI_E_INPUT) and leaves the cursor where it was. */
typedef struct {
    const uint8_t *p;
    size_t left;
} smki_cursor_t;

smki_cursor_t smki_cursor(const uint8_t *p, size_t len);
SMKI_MUST_CHECK int smki_cur_u8(smki_cursor_t *c, uint8_t *out);
SMKI_MUST_CHECK int smki_cur_u16be(smki_cursor_t *c, uint16_t *out);
SMKI_MUST_CHECK int smki_cur_u32be(smki_cursor_t *c, uint32_t *out);
SMKI_MUST_CHECK int smki_cur_u64be(smki_cursor_t *c, uint64_t *out);
/* Point *out at the next n bytes (no copy) and step over them. */
SMKI_MUST_CHECK int smki_cur_take(smki_cursor_t *c, size_t n, const uint8_t **out);
SMKI_MUST_CHECK int smki_cur_copy(smki_cursor_t *c, void *out, size_t n);
/* Not SMKI_MUST_CHECK: parsers skip, as a statement, bytes whose presence they checked. */
int smki_cur_skip(smki_cursor_t *c, size_t n);
/* A sub-cursor over the next n bytes; the parent steps over them. */
SMKI_MUST_CHECK int smki_cur_sub(smki_cursor_t *c, size_t n, smki_cursor_t *sub);
/* BER/DER definite length (short form, or long form of 1..4 octets), checked
 * against the bytes that remain. */
SMKI_MUST_CHECK int smki_cur_ber_len(smki_cursor_t *c, size_t *len);
/* Expect a specific octet. */
SMKI_MUST_CHECK int smki_cur_expect(smki_cursor_t *c, uint8_t want, const char *what);

/* ---- Big-endian integers -------------------------------------------------------
 * Network order for fixed-size fields: store keys and records, GBCS counters. Writes
 * into, and reads from, a buffer whose size the caller has checked (a record whose
 * length was compared with its layout, a key of a known length); bytes whose length
 * is not yet known are read through the cursor (smki_cur_u16be...), which refuses a
 * short input instead. */
static inline void smki_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void smki_put_be32(uint8_t *p, uint32_t v)
{
    smki_put_be16(p, (uint16_t)(v >> 16));
    smki_put_be16(p + 2, (uint16_t)v);
}
static inline void smki_put_be64(uint8_t *p, uint64_t v)
{
    smki_put_be32(p, (uint32_t)(v >> 32));
    smki_put_be32(p + 4, (uint32_t)v);
}
static inline uint16_t smki_get_be16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}
static inline uint32_t smki_get_be32(const uint8_t *p)
{
    return (uint32_t)smki_get_be16(p) << 16 | smki_get_be16(p + 2);
}
static inline uint64_t smki_get_be64(const uint8_t *p)
{
    return (uint64_t)smki_get_be32(p) << 32 | smki_get_be32(p + 4);
}

/* ---- DER (X.690) -----------------------------------------------------------------
 * The one reader and the one writer of DER. Bytes from outside are read one TLV at a
 * time through the cursor; every refusal is SMKI_E_INPUT naming what (and, when the
 * caller passes base, the offset from it), and a refused read leaves the cursor where
 * it was. Single-octet tags only: no field smki reads uses the high-tag-number form. */
typedef struct {
    uint8_t tag;
    size_t offset;        /* of the tag octet from base (0 without one) */
    const uint8_t *start; /* the tag octet */
    size_t total;         /* tag, length and contents octets */
    smki_cursor_t body;   /* the contents */
} smki_der_tlv;

/* Length rules. STRICT is DER (X.690 10.1): definite, 1..4 octets, in the shortest
 * form. BER_LENGTHS also takes a long form where a shorter one fits (81 05, 82 00 05):
 * for the GBCS device model, which reads as smki_cur_ber_len always has, and for a
 * linter that finds a structure first and judges its strictness separately. Neither
 * takes an indefinite length or more than 4 length octets. */
enum { SMKI_DER_STRICT = 0, SMKI_DER_BER_LENGTHS = 1 };
#define SMKI_DER_MAX_DEPTH 32 /* nesting smki_der_check_strict follows */

/* One TLV at the cursor; base (may be NULL) is where offsets in messages count from. */
SMKI_MUST_CHECK int smki_der_read(smki_cursor_t *c, const uint8_t *base, unsigned flags, smki_der_tlv *t);
/* The same, requiring the tag; what names the field in messages ("hwSerialNum missing",
 * "expected hwSerialNum (tag 0x04), found tag 0x30"). */
SMKI_MUST_CHECK int smki_der_expect(smki_cursor_t *c, const uint8_t *base, unsigned flags, uint8_t tag,
                                    const char *what, smki_der_tlv *t);
/* The next tag, or -1 at the end. */
int smki_der_peek(const smki_cursor_t *c);
/* A non-negative INTEGER's contents (body of any tag) of at most 64 bits. Leading zero
 * octets are tolerated (the GBCS device model's reading); callers needing DER's
 * minimal form check it or use smki_der_check_strict. */
SMKI_MUST_CHECK int smki_der_u64(const smki_cursor_t *body, const char *what, uint64_t *out);
/* An OBJECT IDENTIFIER's contents: not empty, subidentifiers in their shortest form,
 * the last one complete (X.690 8.19.2). */
SMKI_MUST_CHECK int smki_der_check_oid(const smki_der_tlv *t, const char *what);
/* Every TLV in c, to SMKI_DER_MAX_DEPTH levels, is DER: STRICT lengths; the
 * constructed form only for SEQUENCE, SET and context/application/private tags;
 * BOOLEAN 00 or FF; minimal INTEGERs; BIT STRING unused bits at most 7 and zero; NULL
 * empty; OBJECT IDENTIFIERs as smki_der_check_oid. */
SMKI_MUST_CHECK int smki_der_check_strict(smki_cursor_t c, const uint8_t *base);

/* The writer: appends into a caller's fixed buffer (smki_writer_fixed) or into its own
 * growing one (smki_writer_grow, handed over by smki_wr_finish). A write that does not
 * fit (or an allocation that fails) is remembered and every later write dropped, so a
 * run of writes is checked once at the end. A nested TLV reserves the longest length
 * form (4 octets) at smki_wr_der_begin and is closed to the shortest by
 * smki_wr_der_end (X.690 10.1), innermost first: the caller writes contents without
 * knowing their length. Big-endian integers as smki_put_be*. */
typedef struct {
    uint8_t *p;
    size_t cap, len;
    int grows;     /* p is the writer's own, grown on demand */
    int err;       /* the first failure, 0 if none */
    unsigned open; /* TLVs begun and not yet ended */
} smki_writer_t;
typedef size_t smki_der_mark; /* an open TLV: where its contents start */

void smki_writer_fixed(smki_writer_t *w, uint8_t *buf, size_t cap);
void smki_writer_grow(smki_writer_t *w);
/* Frees a growing writer's buffer; a fixed one's is the caller's. */
void smki_wr_free(smki_writer_t *w);
void smki_wr_raw(smki_writer_t *w, const void *p, size_t n);
void smki_wr_u8(smki_writer_t *w, uint8_t b);
void smki_wr_be16(smki_writer_t *w, uint16_t v);
void smki_wr_be32(smki_writer_t *w, uint32_t v);
void smki_wr_be64(smki_writer_t *w, uint64_t v);
/* A caller's encoder met a value it cannot encode (a year past 9999): the writer
 * fails as for a write that did not fit, and smki_wr_check says so. */
void smki_wr_invalid(smki_writer_t *w);
/* tag, shortest length, n octets of contents. */
void smki_wr_der(smki_writer_t *w, uint8_t tag, const void *content, size_t n);
/* A TLV's head alone (tag, shortest length of n < 4 GiB) for n octets of contents the
 * caller writes next: for a structure whose lengths are known before it is written (a
 * PKCS#7 around many certificates' DER, written once, not moved). */
void smki_wr_der_head(smki_writer_t *w, uint8_t tag, size_t n);
/* The length alone (a GBCS header's BER lengths are the same shortest form). */
void smki_wr_der_len(smki_writer_t *w, size_t n);
size_t smki_der_head_len(size_t n); /* the octets smki_wr_der_head writes */
smki_der_mark smki_wr_der_begin(smki_writer_t *w, uint8_t tag);
void smki_wr_der_end(smki_writer_t *w, smki_der_mark m);
/* INTEGER from a big-endian magnitude: leading zero octets dropped, a 00 added when
 * the top bit is set (the value is never negative); no octets is 0. */
void smki_wr_der_uint(smki_writer_t *w, const uint8_t *be, size_t n);
/* The same of a 64-bit value, under any tag (an IMPLICIT [n] INTEGER). */
void smki_wr_der_u64(smki_writer_t *w, uint8_t tag, uint64_t v);
/* 0, or the first failure: SMKI_E_INTERNAL "WHAT does not fit in N octets" (a fixed
 * buffer is sized for the largest output: an overflow is a bug), SMKI_E_NOMEM, or
 * SMKI_E_INTERNAL for a TLV over 16 MiB or an end without a begin. TLVs may be open. */
SMKI_MUST_CHECK int smki_wr_check(const smki_writer_t *w, const char *what);
/* A growing writer's result, every TLV ended: *out (caller frees) and *len. On failure
 * the buffer is freed. */
SMKI_MUST_CHECK int smki_wr_finish(smki_writer_t *w, const char *what, uint8_t **out, size_t *len);

/* ---- Hex --------------------------------------------------------------------- */
/* Decode hex text into out (capacity cap). ASCII whitespace between digit pairs is
 * ignored (the RTDS files are hex text with line ends). On failure the content of out
 * is unspecified. */
SMKI_MUST_CHECK int smki_hex_decode(const char *text, size_t text_len, uint8_t *out, size_t cap, size_t *out_len);
/* Encode len bytes as 2*len lowercase (or uppercase) digits plus NUL; out must hold 2*len+1. */
void smki_hex_encode(const uint8_t *in, size_t len, char *out, int upper);

/* ---- Key identifiers -------------------------------------------------------- */
#define SMKI_KEYID_LEN 8 /* SKI / AKI keyIdentifier: RFC 5280 4.2.1.2 method 2 */
/* RFC 5280 4.2.1.2 method 2 of a subjectPublicKey (the BIT STRING's value without its
 * unused-bits octet; for P-256 the 65-octet point 04||X||Y): 0100b, then the low 60
 * bits of its SHA-1. The one implementation: the CA writes it as SKI and AKI, the
 * linters compare against it, a token key's CKA_ID is it, the RA finds certificates by
 * it. Fails (SMKI_E_CRYPTO) only if SHA-1 cannot be fetched. */
int smki_keyid_method2(const uint8_t *key, size_t len, uint8_t id[SMKI_KEYID_LEN]);

/* ---- Files ------------------------------------------------------------------- */
/* Read a whole file of at most max bytes into a fresh buffer (caller frees). */
SMKI_MUST_CHECK int smki_file_read(const char *path, size_t max, uint8_t **out, size_t *out_len);
/* Write a file atomically: a temporary beside it, fsync, rename, fsync the folder.
 * A crash leaves the old file or the new one, never half of either. mode e.g. 0644.
 * With exclusive set, refuses (SMKI_E_EXISTS) if the path exists. */
SMKI_MUST_CHECK int smki_file_write_atomic(const char *path, const void *data, size_t len, int mode, int exclusive);
/* Overwrite a file in place: write at its start, cut it to len, one fdatasync; no
 * temporary, no rename (a file that does not exist yet is made as
 * smki_file_write_atomic makes it). A crash may leave the file torn (part old, part
 * new, or the old length): only for a record its reader checks and keeps twice, the
 * write going to the older copy (the audit trail's anchor, ra/anchor.c). */
SMKI_MUST_CHECK int smki_file_overwrite(const char *path, const void *data, size_t len, int mode);
/* Before work that cannot be taken back: path does not exist (SMKI_E_EXISTS) and a
 * file can be created beside it (SMKI_E_IO naming why not), as
 * smki_file_write_atomic(path, ..., exclusive) will. */
SMKI_MUST_CHECK int smki_file_check_new(const char *path);
/* Remove from dir the temporaries smki_file_write_atomic left there in processes that
 * no longer run (killed while writing): "<name>.tmp.<pid>". */
SMKI_MUST_CHECK int smki_dir_sweep_tmp(const char *dir);
/* mkdir -p with the given mode. */
SMKI_MUST_CHECK int smki_mkdirs(const char *path, int mode);
/* Read a secret (PIN) from a file: first line, trailing newline removed. A file that
 * every user may read or write is refused (SMKI_E_REFUSED, naming it and its mode):
 * its secret must be taken as known. */
SMKI_MUST_CHECK int smki_secret_read_file(const char *path, char *out, size_t cap);
/* A home folder (configuration, token, store) must exist: only the commands that
 * initialise a home create one (with create set, mode 0700); otherwise a missing home,
 * a mistyped --home, is refused (SMKI_E_NOTFOUND) naming it. */
SMKI_MUST_CHECK int smki_home_require(const char *home, int create);

/* Wipe a secret (OPENSSL_cleanse; never optimised away). */
void smki_wipe(void *p, size_t len);

/* ---- Configuration files ------------------------------------------------------
 * "[section]" headers and "key = value" lines; '#' starts a comment line. Keys are
 * looked up as "section.key". Bounded: at most 256 entries, 1 KiB a line. */
typedef struct smki_conf smki_conf;
/* A missing file gives an empty configuration (defaults apply); a malformed line is
 * refused naming the file and line. */
SMKI_MUST_CHECK int smki_conf_load(const char *path, smki_conf **out);
/* The same over bytes in memory; name labels messages ("file:line"). */
SMKI_MUST_CHECK int smki_conf_parse(const uint8_t *data, size_t len, const char *name, smki_conf **out);
/* The value, or fallback when the key is absent. */
const char *smki_conf_get(const smki_conf *c, const char *key, const char *fallback);
/* Refuse (SMKI_E_USAGE, naming file, line and the nearest known key) the first key
 * under [section] that is not in known (NULL-terminated key names without the
 * section): a typo in a reviewed file must not silently fall back to a default. */
SMKI_MUST_CHECK int smki_conf_check_section(const smki_conf *c, const char *section, const char *const *known);
/* Refuse (SMKI_E_USAGE, naming file, line, the nearest and all known sections) the
 * first [section] header not in known (NULL-terminated; "env.*" stands for [env.NAME]),
 * and any setting outside a section: a mistyped section must not silently drop its
 * settings to defaults, as a mistyped key must not. */
SMKI_MUST_CHECK int smki_conf_check_sections(const smki_conf *c, const char *const *known);
void smki_conf_free(smki_conf *c);

#endif
