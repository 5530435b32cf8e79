/* The GBCS message codec (reference §5): General Signing APDUs (DF), the General
 * Ciphering wrapper (DD 00..) with its MAC, and the General Block Transfer routing
 * header (DD 09, header fields only). Every byte is read through the bounded cursor;
 * parsed fields point into the input. */
#include "gbcs.h"

#include <stdlib.h>
#include <string.h>

#define DD_TAG 0xDD
#define DF_TAG 0xDF
#define DATETIME_TAG 0x0C
#define SIG_TAG 0x40

/* Offset of the cursor's position from the start of the whole input. */
static size_t at(const smki_cursor_t *c, const uint8_t *base)
{
    return (size_t)(c->p - base);
}

/* A BER definite length, checked against what follows (smki_cur_ber_len) and minimal:
 * the long form where the short (or a shorter long) form fits is refused, because a
 * re-encoding would differ and GBCS encoders do not write it. */
static int read_len(smki_cursor_t *c, const uint8_t *base, const char *what, size_t *len)
{
    size_t off = at(c, base);
    smki_cursor_t peek = *c;
    uint8_t first = 0;
    if (smki_cur_u8(&peek, &first) < 0 || smki_cur_ber_len(c, len) < 0)
        return smki_error_wrap("%s length at offset %zu", what, off);
    if (first >= 0x80) {
        size_t octets = first & 0x7f;
        size_t need = 0;
        for (size_t v = *len; v; v >>= 8) need++;
        if (*len < 0x80 || octets != need) {
            return SMKI_FAIL(SMKI_E_INPUT, "%s length at offset %zu: non-minimal long form 0x%02x for %zu", what, off,
                             first, *len);
        }
    }
    return 0;
}

static int expect(smki_cursor_t *c, const uint8_t *base, uint8_t want, const char *what)
{
    size_t off = at(c, base);
    if (smki_cur_expect(c, want, what) < 0) return smki_error_wrap("offset %zu", off);
    return 0;
}

/* An octet that announces a fixed-size field: tag(len) then len octets. */
static int fixed_field(smki_cursor_t *c, const uint8_t *base, uint8_t len_octet, size_t n, const char *what,
                       const uint8_t **out)
{
    GUARD(expect(c, base, len_octet, what));
    size_t off = at(c, base);
    if (smki_cur_take(c, n, out) < 0) return smki_error_wrap("%s at offset %zu", what, off);
    return 0;
}

static int read_transaction_id(smki_cursor_t *c, const uint8_t *base, uint8_t *cra, uint64_t *counter)
{
    GUARD(expect(c, base, 0x09, "transaction-id length 09"));
    size_t off = at(c, base);
    if (smki_cur_u8(c, cra) < 0 || smki_cur_u64be(c, counter) < 0)
        return smki_error_wrap("transaction-id at offset %zu", off);
    ENSURE(*cra >= SMKI_GBCS_CRA_COMMAND && *cra <= SMKI_GBCS_CRA_ALERT, SMKI_E_INPUT,
           "CRA flag at offset %zu: expected 01 (command), 02 (response) or 03 (alert), found %02x", off, *cra);
    return 0;
}

static int read_date_time(smki_cursor_t *c, const uint8_t *base, const uint8_t **dt)
{
    size_t off = at(c, base);
    uint8_t tag;
    if (smki_cur_u8(c, &tag) < 0) return smki_error_wrap("date-time at offset %zu", off);
    if (tag == 0x00) {
        *dt = NULL;
        return 0;
    }
    ENSURE(tag == DATETIME_TAG, SMKI_E_INPUT,
           "date-time at offset %zu: expected 00 (absent) or 0C (12 octets), found %02x", off, tag);
    if (smki_cur_take(c, SMKI_GBCS_DATETIME_LEN, dt) < 0) return smki_error_wrap("date-time at offset %zu", off);
    return 0;
}

/* other-information: message code (2), then optionally the supplementary remote party
 * ID (8), its counter (8) and a DER certificate filling the rest exactly. */
static int read_other_info(smki_cursor_t *c, const uint8_t *base, smki_gbcs_signing *g)
{
    size_t len;
    GUARD(read_len(c, base, "other-information", &len));
    size_t off = at(c, base);
    smki_cursor_t oi;
    GUARD(smki_cur_sub(c, len, &oi));
    g->other_info = oi.p;
    g->other_info_len = len;
    ENSURE(len >= 2, SMKI_E_INPUT, "other-information at offset %zu: %zu octet(s), the message code needs 2", off, len);
    GUARD(smki_cur_u16be(&oi, &g->message_code));
    if (oi.left == 0) return 0;
    ENSURE(oi.left >= 8, SMKI_E_INPUT,
           "other-information at offset %zu: %zu octet(s) after the message code, a supplementary remote party ID "
           "needs 8",
           off, oi.left);
    GUARD(smki_cur_take(&oi, 8, &g->supplementary_id));
    if (oi.left == 0) return 0;
    ENSURE(oi.left >= 8, SMKI_E_INPUT,
           "other-information at offset %zu: %zu octet(s) after the supplementary ID, its counter needs 8", off,
           oi.left);
    GUARD(smki_cur_u64be(&oi, &g->urp_counter));
    g->has_urp_counter = 1;
    if (oi.left == 0) return 0;
    /* The rest: one certificate (a SEQUENCE whose length covers exactly the rest), or
     * octets the reference does not describe, kept undecoded. */
    smki_cursor_t cert = oi;
    size_t clen;
    uint8_t tag;
    if (smki_cur_u8(&cert, &tag) == 0 && tag == 0x30 && smki_cur_ber_len(&cert, &clen) == 0 && clen == cert.left) {
        g->urp_cert = oi.p;
        g->urp_cert_len = oi.left;
    } else {
        smki_error_clear();
        g->other_info_rest = oi.p;
        g->other_info_rest_len = oi.left;
    }
    return 0;
}

/* One General Signing APDU from c. allow_none: the bytes may end right after the
 * content (a pre-command). */
static int parse_signing(smki_cursor_t *c, const uint8_t *base, int allow_none, smki_gbcs_signing *g)
{
    memset(g, 0, sizeof *g);
    g->offset = at(c, base);
    GUARD(expect(c, base, DF_TAG, "general-signing tag DF"));
    g->signed_offset = at(c, base);
    GUARD(read_transaction_id(c, base, &g->cra, &g->counter));
    GUARD(fixed_field(c, base, 0x08, 8, "originator system title length 08", &g->originator));
    GUARD(fixed_field(c, base, 0x08, 8, "recipient system title length 08", &g->recipient));
    GUARD(read_date_time(c, base, &g->date_time));
    GUARD(read_other_info(c, base, g));
    size_t clen;
    GUARD(read_len(c, base, "content", &clen));
    GUARD(smki_cur_take(c, clen, &g->content));
    g->content_len = clen;
    g->signed_len = at(c, base) - g->signed_offset;
    size_t off = at(c, base);
    if (c->left == 0) {
        ENSURE(allow_none, SMKI_E_INPUT,
               "signature field at offset %zu: input ended; expected 00 (absent) or 40 and 64 octets", off);
        g->sig_state = SMKI_GBCS_SIG_NONE;
    } else {
        uint8_t tag;
        GUARD(smki_cur_u8(c, &tag));
        if (tag == 0x00) {
            g->sig_state = SMKI_GBCS_SIG_ABSENT;
        } else {
            ENSURE(tag == SIG_TAG, SMKI_E_INPUT,
                   "signature field at offset %zu: expected 00 (absent) or 40 (64 octets), found %02x", off, tag);
            if (smki_cur_take(c, SMKI_GBCS_SIG_LEN, &g->signature) < 0)
                return smki_error_wrap("signature at offset %zu", off);
            g->sig_state = SMKI_GBCS_SIG_PRESENT;
        }
    }
    g->len = at(c, base) - g->offset;
    return 0;
}

/* AAD (reference §5): 11 00 00 00 00 00 || General Signing APDU: the security control
 * followed by the five empty header fields (as DLMS general-ciphering authenticates its
 * header). The invocation counter is not part of it; it is in the IV. */
static const uint8_t AAD_HEADER[6] = {SMKI_GBCS_SC_AUTH, 0, 0, 0, 0, 0};

static int parse_ciphering(smki_cursor_t *c, const uint8_t *base, smki_gbcs_msg *m)
{
    /* DD, then the five header fields (transaction-id, originator and recipient titles,
     * date-time, other-information) empty and key-info absent: six 00 octets. */
    static const char *const FIELDS[6] = {"empty transaction-id 00", "empty originator title 00",
                                          "empty recipient title 00", "empty date-time 00",
                                          "empty other-information 00", "absent key-info 00"};
    GUARD(expect(c, base, DD_TAG, "general-ciphering tag DD"));
    for (int i = 0; i < 6; i++) GUARD(expect(c, base, 0x00, FIELDS[i]));
    size_t len;
    GUARD(read_len(c, base, "ciphered-content", &len));
    ENSURE(len == c->left, SMKI_E_INPUT,
           "ciphered-content length %zu at offset %zu, but %zu octet(s) follow (trailing bytes)", len,
           at(c, base), c->left);
    size_t sc_off = at(c, base);
    GUARD(smki_cur_u8(c, &m->security_control));
    ENSURE(m->security_control == SMKI_GBCS_SC_AUTH, SMKI_E_INPUT,
           "security control at offset %zu: expected 11 (authenticated only), found %02x", sc_off,
           m->security_control);
    if (smki_cur_u32be(c, &m->invocation_counter) < 0)
        return smki_error_wrap("invocation counter at offset %zu", at(c, base));
    ENSURE(c->left >= SMKI_GBCS_MAC_LEN, SMKI_E_INPUT,
           "general-ciphering at offset %zu: %zu octet(s) left, the MAC alone needs 12", at(c, base), c->left);
    smki_cursor_t inner;
    GUARD(smki_cur_sub(c, c->left - SMKI_GBCS_MAC_LEN, &inner));
    GUARD(parse_signing(&inner, base, 0, &m->gsa));
    ENSURE(inner.left == 0, SMKI_E_INPUT,
           "general-signing APDU ends at offset %zu, but %zu octet(s) come before the 12-octet MAC",
           at(&inner, base), inner.left);
    GUARD(smki_cur_take(c, SMKI_GBCS_MAC_LEN, &m->mac));
    m->aad_header = AAD_HEADER;
    m->aad_offset = m->gsa.offset;
    m->aad_len = m->gsa.len;
    return 0;
}

static int parse_block(smki_cursor_t *c, const uint8_t *base, smki_gbcs_msg *m)
{
    GUARD(expect(c, base, DD_TAG, "general-ciphering tag DD"));
    smki_gbcs_block *b = &m->block;
    GUARD(read_transaction_id(c, base, &b->cra, &b->counter));
    GUARD(fixed_field(c, base, 0x08, 8, "originator system title length 08", &b->originator));
    GUARD(fixed_field(c, base, 0x08, 8, "recipient system title length 08", &b->recipient));
    GUARD(read_date_time(c, base, &b->date_time));
    b->body_offset = at(c, base);
    b->body_len = c->left;
    GUARD(smki_cur_skip(c, c->left));
    return 0;
}

int smki_gbcs_parse(const uint8_t *data, size_t len, smki_gbcs_msg *out)
{
    memset(out, 0, sizeof *out);
    ENSURE(data != NULL && len > 0, SMKI_E_INPUT, "empty GBCS message");
    ENSURE(len <= SMKI_GBCS_MAX_MSG, SMKI_E_INPUT, "GBCS message of %zu octets exceeds %u", len, SMKI_GBCS_MAX_MSG);
    out->data = data;
    out->len = len;
    smki_cursor_t c = smki_cursor(data, len);
    int rc;
    if (data[0] == DF_TAG) {
        out->kind = SMKI_GBCS_SIGNING;
        rc = parse_signing(&c, data, 1, &out->gsa);
        if (rc == 0 && c.left != 0)
            rc = SMKI_FAIL(SMKI_E_INPUT, "%zu trailing octet(s) after the general-signing APDU at offset %zu", c.left,
                           at(&c, data));
    } else if (data[0] == DD_TAG) {
        if (len >= 2 && data[1] == 0x09) {
            out->kind = SMKI_GBCS_BLOCK;
            rc = parse_block(&c, data, out);
        } else {
            out->kind = SMKI_GBCS_CIPHERING;
            rc = parse_ciphering(&c, data, out);
        }
    } else {
        rc = SMKI_FAIL(SMKI_E_INPUT, "offset 0: expected DF (general-signing) or DD (general-ciphering), found %02x",
                       data[0]);
    }
    if (rc < 0) {
        smki_gbcs_kind k = out->kind;
        memset(out, 0, sizeof *out);
        out->kind = k;
        return rc;
    }
    return 0;
}

/* ---- Input files ------------------------------------------------------------------ */
static int is_hex_text(const uint8_t *d, size_t n)
{
    size_t digits = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = d[i];
        if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F'))
            digits++;
        else if (!(ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\f' || ch == '\v'))
            return 0;
    }
    return digits > 0;
}

int smki_gbcs_decode_input(const uint8_t *data, size_t len, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    ENSURE(len <= 2 * (size_t)SMKI_GBCS_MAX_MSG + 4096, SMKI_E_INPUT, "message file of %zu octets is too large", len);
    uint8_t *buf = malloc(len ? len : 1);
    ENSURE(buf, SMKI_E_NOMEM, "out of memory");
    if (is_hex_text(data, len)) {
        size_t n;
        int rc = smki_hex_decode((const char *)data, len, buf, len, &n);
        if (rc < 0) {
            free(buf);
            return rc;
        }
        *out_len = n;
    } else {
        if (len) memcpy(buf, data, len);
        *out_len = len;
    }
    *out = buf;
    return 0;
}

int smki_gbcs_read_file(const char *path, uint8_t **out, size_t *out_len)
{
    uint8_t *raw = NULL;
    size_t n = 0;
    *out = NULL;
    *out_len = 0;
    GUARD(smki_file_read(path, 2 * (size_t)SMKI_GBCS_MAX_MSG + 4096, &raw, &n));
    int rc = smki_gbcs_decode_input(raw, n, out, out_len);
    free(raw);
    if (rc < 0) return smki_error_wrap("%s", path);
    return 0;
}

const char *smki_gbcs_kind_name(smki_gbcs_kind k)
{
    switch (k) {
    case SMKI_GBCS_SIGNING: return "general-signing";
    case SMKI_GBCS_CIPHERING: return "general-ciphering";
    case SMKI_GBCS_BLOCK: return "block-transfer";
    }
    return "unknown";
}

const char *smki_gbcs_cra_name(unsigned cra)
{
    switch (cra) {
    case SMKI_GBCS_CRA_COMMAND: return "command";
    case SMKI_GBCS_CRA_RESPONSE: return "response";
    case SMKI_GBCS_CRA_ALERT: return "alert";
    }
    return "unknown";
}

smki_eui64_t smki_gbcs_eui(const uint8_t title[8])
{
    smki_eui64_t id;
    memcpy(id.b, title, 8);
    return id;
}

/* ---- Building --------------------------------------------------------------------- */
static int build_other_info(const smki_gbcs_fields *f, smki_writer_t *oi)
{
    if (f->other_info) {
        smki_wr_raw(oi, f->other_info, f->other_info_len);
        return 0;
    }
    smki_wr_be16(oi, f->message_code);
    if (!f->supplementary_id) {
        ENSURE(!f->has_urp_counter && !f->urp_cert && !f->other_info_rest, SMKI_E_USAGE,
               "other-information: a counter or certificate needs the supplementary remote party ID");
        return 0;
    }
    smki_wr_raw(oi, f->supplementary_id, 8);
    if (!f->has_urp_counter) {
        ENSURE(!f->urp_cert && !f->other_info_rest, SMKI_E_USAGE,
               "other-information: a certificate needs the counter before it");
        return 0;
    }
    smki_wr_be64(oi, f->urp_counter);
    ENSURE(!(f->urp_cert && f->other_info_rest), SMKI_E_USAGE,
           "other-information: a certificate or undecoded octets after the counter, not both");
    if (f->urp_cert) smki_wr_raw(oi, f->urp_cert, f->urp_cert_len);
    if (f->other_info_rest) smki_wr_raw(oi, f->other_info_rest, f->other_info_rest_len);
    return 0;
}

/* The General Signing APDU's header fields, then its lengths and contents. */
static void write_signing(smki_writer_t *b, const smki_gbcs_fields *f, const smki_writer_t *oi)
{
    smki_wr_u8(b, DF_TAG);
    smki_wr_u8(b, 0x09);
    smki_wr_u8(b, f->cra);
    smki_wr_be64(b, f->counter);
    smki_wr_u8(b, 0x08);
    smki_wr_raw(b, f->originator, 8);
    smki_wr_u8(b, 0x08);
    smki_wr_raw(b, f->recipient, 8);
    if (f->date_time) {
        smki_wr_u8(b, DATETIME_TAG);
        smki_wr_raw(b, f->date_time, SMKI_GBCS_DATETIME_LEN);
    } else {
        smki_wr_u8(b, 0x00);
    }
    smki_wr_der_len(b, oi->len);
    smki_wr_raw(b, oi->p, oi->len);
    smki_wr_der_len(b, f->content_len);
    smki_wr_raw(b, f->content, f->content_len);
    if (f->sig_state == SMKI_GBCS_SIG_ABSENT) {
        smki_wr_u8(b, 0x00);
    } else if (f->sig_state == SMKI_GBCS_SIG_PRESENT) {
        smki_wr_u8(b, SIG_TAG);
        smki_wr_raw(b, f->signature, SMKI_GBCS_SIG_LEN);
    }
}

int smki_gbcs_build_signing(const smki_gbcs_fields *f, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    ENSURE(f->cra >= SMKI_GBCS_CRA_COMMAND && f->cra <= SMKI_GBCS_CRA_ALERT, SMKI_E_USAGE,
           "CRA flag %u: must be 1 (command), 2 (response) or 3 (alert)", f->cra);
    ENSURE(f->originator && f->recipient, SMKI_E_USAGE, "originator and recipient titles are required");
    ENSURE(f->content || f->content_len == 0, SMKI_E_USAGE, "content is missing");
    ENSURE(f->sig_state != SMKI_GBCS_SIG_PRESENT || f->signature, SMKI_E_USAGE, "signature is missing");
    smki_writer_t b, oi;
    smki_writer_grow(&b);
    smki_writer_grow(&oi);
    int rc = build_other_info(f, &oi);
    if (rc == 0) rc = smki_wr_check(&oi, "the other-information");
    if (rc == 0) write_signing(&b, f, &oi);
    smki_wr_free(&oi);
    if (rc < 0) {
        smki_wr_free(&b);
        return rc;
    }
    return smki_wr_finish(&b, "the General Signing APDU", out, out_len);
}

/* ---- Signing and verifying ---------------------------------------------------------- */
int smki_gbcs_sign(smki_key *key, const uint8_t *pre, size_t pre_len, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    smki_gbcs_msg m;
    if (smki_gbcs_parse(pre, pre_len, &m) < 0) return smki_error_wrap("pre-command");
    ENSURE(m.kind == SMKI_GBCS_SIGNING, SMKI_E_INPUT,
           "pre-command is a %s message: only a general-signing APDU (DF) is signed", smki_gbcs_kind_name(m.kind));
    ENSURE(m.gsa.sig_state != SMKI_GBCS_SIG_PRESENT, SMKI_E_REFUSED, "pre-command already carries a signature");
    uint8_t sig[SMKI_SIG_MAX];
    size_t sig_len = sizeof sig;
    GUARD(smki_key_sign(key, pre + m.gsa.signed_offset, m.gsa.signed_len, SMKI_SIG_RAW, sig, &sig_len));
    ENSURE(sig_len == SMKI_GBCS_SIG_LEN, SMKI_E_INTERNAL, "raw signature of %zu octets", sig_len);
    size_t n = m.gsa.signed_offset + m.gsa.signed_len;
    uint8_t *buf = malloc(n + 1 + SMKI_GBCS_SIG_LEN);
    ENSURE(buf, SMKI_E_NOMEM, "out of memory");
    memcpy(buf, pre, n);
    buf[n] = SIG_TAG;
    memcpy(buf + n + 1, sig, SMKI_GBCS_SIG_LEN);
    *out = buf;
    *out_len = n + 1 + SMKI_GBCS_SIG_LEN;
    return 0;
}

int smki_gbcs_verify_signature(const smki_gbcs_msg *m, EVP_PKEY *signer)
{
    ENSURE(m->kind == SMKI_GBCS_SIGNING || m->kind == SMKI_GBCS_CIPHERING, SMKI_E_INPUT,
           "a %s message carries no general-signing APDU to verify", smki_gbcs_kind_name(m->kind));
    ENSURE(m->gsa.sig_state == SMKI_GBCS_SIG_PRESENT, SMKI_E_VERIFY, "the general-signing APDU carries no signature");
    int rc = smki_verify(signer, m->data + m->gsa.signed_offset, m->gsa.signed_len, SMKI_SIG_RAW, m->gsa.signature,
                         SMKI_GBCS_SIG_LEN);
    if (rc == SMKI_E_INPUT) return SMKI_FAIL(SMKI_E_VERIFY, "signature r or s out of range");
    return rc;
}

/* The MAC under the shared secret z (reference §5): key = KDF(z, OtherInfo of the APDU's
 * originator, CRA, counter, recipient); IV = originator || ic; AAD = 11 00 00 00 00 00 || gsa. */
static int mac_with_z(const uint8_t z[32], const uint8_t *gsa, size_t gsa_len, const smki_gbcs_signing *g,
                      uint32_t ic, uint8_t mac[SMKI_GBCS_MAC_LEN])
{
    uint8_t oi[SMKI_GBCS_OTHERINFO_LEN], key[16], iv[12];
    smki_gbcs_other_info(g->originator, g->cra, g->counter, g->recipient, oi);
    int rc = smki_kdf_sp800_56a(z, oi, sizeof oi, key);
    if (rc < 0) {
        smki_wipe(key, sizeof key);
        return smki_error_wrap("MAC key");
    }
    memcpy(iv, g->originator, 8);
    for (int i = 0; i < 4; i++) iv[8 + i] = (uint8_t)(ic >> (24 - 8 * i));
    uint8_t *aad = malloc(sizeof AAD_HEADER + gsa_len);
    if (!aad) {
        smki_wipe(key, sizeof key);
        return SMKI_FAIL(SMKI_E_NOMEM, "MAC input of %zu octets", gsa_len);
    }
    memcpy(aad, AAD_HEADER, sizeof AAD_HEADER);
    memcpy(aad + sizeof AAD_HEADER, gsa, gsa_len);
    rc = smki_gcm_mac12(key, iv, aad, sizeof AAD_HEADER + gsa_len, mac);
    smki_wipe(key, sizeof key);
    free(aad);
    return rc;
}

/* The same with z = ECDH(own, peer), wiped after use. */
static int mac_over(const uint8_t *gsa, size_t gsa_len, const smki_gbcs_signing *g, smki_key *own_ka,
                    EVP_PKEY *peer_ka, uint32_t ic, uint8_t mac[SMKI_GBCS_MAC_LEN])
{
    ENSURE(own_ka && peer_ka, SMKI_E_USAGE, "the MAC needs a key-agreement key and the peer's KA public key");
    uint8_t z[32];
    int rc = smki_key_ecdh(own_ka, peer_ka, z);
    if (rc == 0) rc = mac_with_z(z, gsa, gsa_len, g, ic, mac);
    smki_wipe(z, sizeof z);
    return rc;
}

/* A General Signing APDU that may be MACed: DF, with its signature field (signed, or 00). */
static int parse_macable(const uint8_t *gsa, size_t gsa_len, smki_gbcs_msg *m)
{
    if (smki_gbcs_parse(gsa, gsa_len, m) < 0) return smki_error_wrap("APDU to MAC");
    ENSURE(m->kind == SMKI_GBCS_SIGNING, SMKI_E_INPUT, "only a general-signing APDU (DF) is MACed, not a %s message",
           smki_gbcs_kind_name(m->kind));
    ENSURE(m->gsa.sig_state != SMKI_GBCS_SIG_NONE, SMKI_E_REFUSED,
           "the APDU ends with its content: sign it first (or end it with 00 when it is sent unsigned)");
    return 0;
}

int smki_gbcs_mac_z(const uint8_t z[32], const uint8_t *gsa, size_t gsa_len, uint32_t invocation_counter,
                    uint8_t mac[SMKI_GBCS_MAC_LEN])
{
    smki_gbcs_msg m;
    GUARD(parse_macable(gsa, gsa_len, &m));
    return mac_with_z(z, gsa, gsa_len, &m.gsa, invocation_counter, mac);
}

/* DD 00 00 00 00 00 00 <len> 11 <ic> <gsa> <mac> */
static int build_command(const uint8_t *gsa, size_t gsa_len, uint32_t ic, const uint8_t mac[SMKI_GBCS_MAC_LEN],
                         uint8_t **out, size_t *out_len)
{
    smki_writer_t b;
    smki_writer_grow(&b);
    static const uint8_t HDR[7] = {DD_TAG, 0, 0, 0, 0, 0, 0};
    smki_wr_raw(&b, HDR, sizeof HDR);
    smki_wr_der_len(&b, 1 + 4 + gsa_len + SMKI_GBCS_MAC_LEN);
    smki_wr_u8(&b, SMKI_GBCS_SC_AUTH);
    smki_wr_be32(&b, ic);
    smki_wr_raw(&b, gsa, gsa_len);
    smki_wr_raw(&b, mac, SMKI_GBCS_MAC_LEN);
    return smki_wr_finish(&b, "the General Ciphering command", out, out_len);
}

int smki_gbcs_wrap_z(const uint8_t *gsa, size_t gsa_len, const uint8_t z[32], uint32_t invocation_counter,
                     uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    uint8_t mac[SMKI_GBCS_MAC_LEN];
    GUARD(smki_gbcs_mac_z(z, gsa, gsa_len, invocation_counter, mac));
    return build_command(gsa, gsa_len, invocation_counter, mac, out, out_len);
}

int smki_gbcs_compute_mac(const smki_gbcs_msg *m, smki_key *own_ka, EVP_PKEY *peer_ka, uint8_t mac[SMKI_GBCS_MAC_LEN])
{
    ENSURE(m->kind == SMKI_GBCS_CIPHERING, SMKI_E_INPUT, "a %s message carries no MAC",
           smki_gbcs_kind_name(m->kind));
    return mac_over(m->data + m->aad_offset, m->aad_len, &m->gsa, own_ka, peer_ka, m->invocation_counter, mac);
}

int smki_gbcs_verify_mac(const smki_gbcs_msg *m, smki_key *own_ka, EVP_PKEY *peer_ka)
{
    uint8_t mac[SMKI_GBCS_MAC_LEN];
    GUARD(smki_gbcs_compute_mac(m, own_ka, peer_ka, mac));
    /* constant time compare */
    uint8_t diff = 0;
    for (int i = 0; i < SMKI_GBCS_MAC_LEN; i++) diff |= (uint8_t)(mac[i] ^ m->mac[i]);
    if (diff) {
        char want[2 * SMKI_GBCS_MAC_LEN + 1], got[2 * SMKI_GBCS_MAC_LEN + 1];
        smki_hex_encode(m->mac, SMKI_GBCS_MAC_LEN, got, 1);
        smki_hex_encode(mac, SMKI_GBCS_MAC_LEN, want, 1);
        return SMKI_FAIL(SMKI_E_VERIFY, "MAC does not verify: message carries %s, keys give %s", got, want);
    }
    return 0;
}

int smki_gbcs_wrap(const uint8_t *gsa, size_t gsa_len, smki_key *own_ka, EVP_PKEY *peer_ka, uint32_t ic,
                   uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    smki_gbcs_msg m;
    GUARD(parse_macable(gsa, gsa_len, &m));
    uint8_t mac[SMKI_GBCS_MAC_LEN];
    GUARD(mac_over(gsa, gsa_len, &m.gsa, own_ka, peer_ka, ic, mac));
    return build_command(gsa, gsa_len, ic, mac, out, out_len);
}
