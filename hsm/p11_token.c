/* Tokens and key pairs through raw PKCS#11: initialise a token, generate an EC P-256
 * pair inside it (keygen.c), list and remove pairs, keep small notes (data
 * objects), and guard the embedded SoftHSM's token files against a kill. Key *use* goes
 * through libp11 (key.c); this file is the administration libp11 0.4.12 does not
 * offer. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "p11.h"
#include "uri.h"

/* CK_TOKEN_INFO strings are blank-padded, not terminated. */
static void unpad(const CK_UTF8CHAR *src, size_t len, char *dst)
{
    while (len > 0 && (src[len - 1] == ' ' || src[len - 1] == '\0')) len--;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static void pad(const char *src, CK_UTF8CHAR *dst, size_t len)
{
    memset(dst, ' ', len);
    memcpy(dst, src, strlen(src) < len ? strlen(src) : len);
}

static int get_slots(p11_module *m, CK_SLOT_ID **slots, CK_ULONG *count)
{
    CK_FUNCTION_LIST *f = smki_p11_module_functions(m);
    CK_ULONG n = 0;
    CK_RV rv = f->C_GetSlotList(CK_TRUE, NULL, &n);
    if (rv != CKR_OK) return smki_p11_fail_rv(rv, "-", "C_GetSlotList");
    *slots = calloc(n ? n : 1, sizeof **slots);
    ENSURE(*slots != NULL, SMKI_E_NOMEM, "out of memory listing slots");
    rv = f->C_GetSlotList(CK_TRUE, *slots, &n);
    if (rv != CKR_OK) {
        free(*slots);
        return smki_p11_fail_rv(rv, "-", "C_GetSlotList");
    }
    *count = n;
    return 0;
}

int smki_p11_find_token(p11_module *m, const char *label, CK_SLOT_ID *slot, CK_TOKEN_INFO *info)
{
    CK_SLOT_ID *slots = NULL;
    CK_ULONG n = 0;
    GUARD(get_slots(m, &slots, &n));
    char seen[256] = "";
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        if (smki_p11_module_functions(m)->C_GetTokenInfo(slots[i], &ti) != CKR_OK) continue;
        if (!(ti.flags & CKF_TOKEN_INITIALIZED)) continue;
        char name[33];
        unpad(ti.label, sizeof ti.label, name);
        if (strcmp(name, label) == 0) {
            *slot = slots[i];
            if (info) *info = ti;
            free(slots);
            return 0;
        }
        if (strlen(seen) + strlen(name) + 4 < sizeof seen) {
            if (seen[0]) strcat(seen, ", ");
            strcat(seen, name);
        }
    }
    free(slots);
    return SMKI_FAIL(SMKI_E_NOTFOUND, "no token labelled '%s' in %s (tokens there: %s)", label, smki_p11_module_path(m),
                     seen[0] ? seen : "none; run 'smki hsm init'");
}

static void fill_info(const p11_module *m, CK_SLOT_ID slot, const CK_TOKEN_INFO *ti, smki_token_info *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->module, sizeof out->module, "%s", smki_p11_module_path(m));
    unpad(ti->label, sizeof ti->label, out->label);
    unpad(ti->manufacturerID, sizeof ti->manufacturerID, out->manufacturer);
    unpad(ti->model, sizeof ti->model, out->model);
    unpad(ti->serialNumber, sizeof ti->serialNumber, out->serial);
    out->slot_id = slot;
    out->initialized = (ti->flags & CKF_TOKEN_INITIALIZED) != 0;
    out->login_required = (ti->flags & CKF_LOGIN_REQUIRED) != 0;
    out->user_pin_set = (ti->flags & CKF_USER_PIN_INITIALIZED) != 0;
}

int smki_token_find(const smki_hsm_opts *o, const char *label, smki_token_info *info)
{
    p11_module *m;
    GUARD(smki_p11_module_get(smki_p11_module_choose(o, NULL), &m));
    CK_SLOT_ID slot;
    CK_TOKEN_INFO ti;
    GUARD(smki_p11_find_token(m, label, &slot, &ti));
    if (info) fill_info(m, slot, &ti, info);
    return 0;
}

int smki_p11_open_session(p11_module *m, CK_SLOT_ID slot, const char *token, const char *pin, int rw,
                     CK_SESSION_HANDLE *out)
{
    CK_FUNCTION_LIST *f = smki_p11_module_functions(m);
    CK_FLAGS flags = CKF_SERIAL_SESSION | (rw ? CKF_RW_SESSION : 0);
    CK_RV rv = f->C_OpenSession(slot, flags, NULL, NULL, out);
    if (rv != CKR_OK) return smki_p11_fail_rv(rv, token, "opening a session");
    if (!pin) return 0;
    rv = f->C_Login(*out, CKU_USER, (CK_UTF8CHAR *)pin, strlen(pin));
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
        f->C_CloseSession(*out);
        return smki_p11_fail_rv(rv, token, "login");
    }
    return 0;
}

void smki_p11_close_session(p11_module *m, CK_SESSION_HANDLE s)
{
    smki_p11_module_functions(m)->C_CloseSession(s);
}

static int find_free_slot(p11_module *m, CK_SLOT_ID *slot)
{
    CK_SLOT_ID *slots = NULL;
    CK_ULONG n = 0;
    GUARD(get_slots(m, &slots, &n));
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        if (smki_p11_module_functions(m)->C_GetTokenInfo(slots[i], &ti) != CKR_OK) continue;
        if (!(ti.flags & CKF_TOKEN_INITIALIZED)) {
            *slot = slots[i];
            free(slots);
            return 0;
        }
    }
    free(slots);
    return SMKI_FAIL(SMKI_E_HSM, "%s has no free slot for a new token", smki_p11_module_path(m));
}

static int set_user_pin(p11_module *m, CK_SLOT_ID slot, const char *label, const char *so_pin, const char *user_pin)
{
    CK_FUNCTION_LIST *f = smki_p11_module_functions(m);
    CK_SESSION_HANDLE s;
    GUARD(smki_p11_open_session(m, slot, label, NULL, 1, &s));
    CK_RV rv = f->C_Login(s, CKU_SO, (CK_UTF8CHAR *)so_pin, strlen(so_pin));
    if (rv == CKR_OK) {
        rv = f->C_InitPIN(s, (CK_UTF8CHAR *)user_pin, strlen(user_pin));
        f->C_Logout(s);
        if (rv != CKR_OK) {
            smki_p11_close_session(m, s);
            return smki_p11_fail_rv(rv, label, "setting the user PIN");
        }
    }
    smki_p11_close_session(m, s);
    if (rv != CKR_OK) return smki_p11_fail_rv(rv, label, "SO login");
    return 0;
}

/* Refuse a PIN the token will refuse, before anything on the token changes. */
static int check_pin_length(const CK_TOKEN_INFO *ti, const char *pin, const char *which)
{
    size_t len = strlen(pin);
    CK_ULONG lo = ti->ulMinPinLen, hi = ti->ulMaxPinLen;
    ENSURE(len >= lo && (hi == 0 || len <= hi), SMKI_E_USAGE, "the %s must be %lu to %lu characters, not %zu", which,
           (unsigned long)lo, (unsigned long)hi, len);
    return 0;
}

static int finish_user_pin(p11_module *m, const char *label, const char *so_pin, const char *user_pin,
                           CK_SLOT_ID *slot, CK_TOKEN_INFO *ti)
{
    ENSURE(so_pin && *so_pin && user_pin && *user_pin, SMKI_E_USAGE,
           "token '%s' exists but has no user PIN (an earlier init was cut short): give the SO PIN and a user "
           "PIN to finish it",
           label);
    GUARD(check_pin_length(ti, user_pin, "user PIN"));
    GUARD(set_user_pin(m, *slot, label, so_pin, user_pin));
    return smki_p11_find_token(m, label, slot, ti);
}

int smki_token_init(const smki_hsm_opts *o, const char *label, const char *so_pin, const char *user_pin,
                    int *created, smki_token_info *info)
{
    ENSURE(label && *label && strlen(label) <= 32, SMKI_E_USAGE, "token label must be 1 to 32 characters: '%.40s'",
           label ? label : "");
    p11_module *m;
    GUARD(smki_p11_module_get(smki_p11_module_choose(o, NULL), &m));
    CK_SLOT_ID slot;
    CK_TOKEN_INFO ti;
    *created = 0;
    if (smki_p11_find_token(m, label, &slot, &ti) == 0) {
        smki_error_clear();
        if (!(ti.flags & CKF_USER_PIN_INITIALIZED)) {
            GUARD(finish_user_pin(m, label, so_pin, user_pin, &slot, &ti));
            *created = 1;
        }
        if (info) fill_info(m, slot, &ti, info);
        return 0;
    }
    ENSURE(so_pin && *so_pin, SMKI_E_USAGE, "a new token needs an SO PIN (SMKI_SO_PIN or --so-pin-file)");
    ENSURE(user_pin && *user_pin, SMKI_E_USAGE, "a new token needs a user PIN (SMKI_PIN or --pin-file)");
    smki_error_clear();
    GUARD(find_free_slot(m, &slot));
    CK_RV rv = smki_p11_module_functions(m)->C_GetTokenInfo(slot, &ti);
    if (rv != CKR_OK) return smki_p11_fail_rv(rv, label, "reading the free slot's token information");
    GUARD(check_pin_length(&ti, so_pin, "SO PIN"));
    GUARD(check_pin_length(&ti, user_pin, "user PIN"));
    CK_UTF8CHAR padded[32];
    pad(label, padded, sizeof padded);
    rv = smki_p11_module_functions(m)->C_InitToken(slot, (CK_UTF8CHAR *)so_pin, strlen(so_pin), padded);
    if (rv != CKR_OK) return smki_p11_fail_rv(rv, label, "C_InitToken");
    /* SoftHSM moves an initialised token to a new slot id: look it up again. */
    GUARD(smki_p11_find_token(m, label, &slot, &ti));
    GUARD(set_user_pin(m, slot, label, so_pin, user_pin));
    GUARD(smki_p11_find_token(m, label, &slot, &ti));
    if (info) fill_info(m, slot, &ti, info);
    *created = 1;
    return 0;
}

int smki_p11_count_labelled(p11_module *m, CK_SESSION_HANDLE s, const char *token, const char *label, CK_ULONG *found)
{
    CK_FUNCTION_LIST *f = smki_p11_module_functions(m);
    CK_BBOOL on_token = CK_TRUE; /* not the session copies of keys this process has open (key.c) */
    CK_ATTRIBUTE tmpl[] = {{CKA_LABEL, (void *)label, strlen(label)}, {CKA_TOKEN, &on_token, sizeof on_token}};
    CK_OBJECT_HANDLE h[4];
    CK_RV rv = f->C_FindObjectsInit(s, tmpl, 2);
    if (rv != CKR_OK) return smki_p11_fail_rv(rv, token, "searching keys");
    rv = f->C_FindObjects(s, h, 4, found);
    f->C_FindObjectsFinal(s);
    if (rv != CKR_OK) return smki_p11_fail_rv(rv, token, "searching keys");
    return 0;
}

int smki_p11_read_point(p11_module *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE pub, const char *token,
                          uint8_t point[SMKI_POINT_LEN])
{
    uint8_t der[80];
    CK_ATTRIBUTE a = {CKA_EC_POINT, der, sizeof der};
    CK_RV rv = smki_p11_module_functions(m)->C_GetAttributeValue(s, pub, &a, 1);
    if (rv != CKR_OK) return smki_p11_fail_rv(rv, token, "reading the new public key");
    if (a.ulValueLen == SMKI_POINT_LEN + 2 && der[0] == 0x04 && der[1] == SMKI_POINT_LEN) {
        memcpy(point, der + 2, SMKI_POINT_LEN);
    } else if (a.ulValueLen == SMKI_POINT_LEN && der[0] == 0x04) {
        memcpy(point, der, SMKI_POINT_LEN); /* some modules return the bare point */
    } else {
        return SMKI_FAIL(SMKI_E_HSM, "token '%s': unexpected CKA_EC_POINT of %lu octets", token,
                         (unsigned long)a.ulValueLen);
    }
    return 0;
}

static int list_one(p11_module *m, CK_SESSION_HANDLE s, const char *token, CK_OBJECT_HANDLE h, smki_key_info *ki)
{
    CK_BBOOL sign = CK_FALSE, derive = CK_FALSE;
    char label[65] = "";
    uint8_t id[32];
    CK_ATTRIBUTE a[] = {{CKA_LABEL, label, sizeof label - 1}, {CKA_ID, id, sizeof id},
                        {CKA_SIGN, &sign, sizeof sign},      {CKA_DERIVE, &derive, sizeof derive}};
    CK_RV rv = smki_p11_module_functions(m)->C_GetAttributeValue(s, h, a, 4);
    if (rv != CKR_OK) return smki_p11_fail_rv(rv, token, "reading key attributes");
    memset(ki, 0, sizeof *ki);
    size_t llen = a[0].ulValueLen == (CK_ULONG)-1 ? 0 : a[0].ulValueLen;
    memcpy(ki->label, label, llen);
    size_t ilen = a[1].ulValueLen == (CK_ULONG)-1 ? 0 : a[1].ulValueLen;
    smki_hex_encode(id, ilen, ki->id_hex, 0);
    ki->has_private = 1;
    ki->usage = (sign ? SMKI_USAGE_DS : 0) | (derive ? SMKI_USAGE_KA : 0);
    return smki_p11_uri_format(token, ki->label[0] ? ki->label : NULL, id, ilen, ki->uri, sizeof ki->uri);
}

int smki_key_list(const smki_hsm_opts *o, const char *token_label, smki_key_info **keys, size_t *count)
{
    int rc = 0;
    *keys = NULL;
    *count = 0;
    p11_module *m;
    GUARD(smki_p11_module_get(smki_p11_module_choose(o, NULL), &m));
    CK_SLOT_ID slot;
    GUARD(smki_p11_find_token(m, token_label, &slot, NULL));
    CK_SESSION_HANDLE s;
    GUARD(smki_p11_open_session(m, slot, token_label, o ? o->pin : NULL, 0, &s));
    CK_FUNCTION_LIST *f = smki_p11_module_functions(m);
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_KEY_TYPE kt = CKK_EC;
    CK_BBOOL on_token = CK_TRUE; /* not the session copies of keys this process has open (key.c) */
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls},
                           {CKA_KEY_TYPE, &kt, sizeof kt},
                           {CKA_TOKEN, &on_token, sizeof on_token}};
    CK_OBJECT_HANDLE h[256];
    CK_ULONG n = 0;
    CK_RV rv = f->C_FindObjectsInit(s, tmpl, 3);
    if (rv == CKR_OK) rv = f->C_FindObjects(s, h, 256, &n);
    f->C_FindObjectsFinal(s);
    ENSURE_GOTO(rv == CKR_OK, smki_p11_rv_class(rv), out, "token '%s': listing keys: %s", token_label, smki_p11_rv_name(rv));
    if (n) {
        *keys = calloc(n, sizeof **keys);
        ENSURE_GOTO(*keys != NULL, SMKI_E_NOMEM, out, "out of memory listing keys");
    }
    for (CK_ULONG i = 0; i < n; i++) GUARD_GOTO(list_one(m, s, token_label, h[i], &(*keys)[i]), out);
    *count = n;
out:
    if (rc < 0) {
        free(*keys);
        *keys = NULL;
    }
    smki_p11_close_session(m, s);
    return rc;
}

int smki_p11_read_public_key(const char *module, const smki_p11_uri *u, EVP_PKEY **out)
{
    int rc = 0;
    p11_module *m;
    GUARD(smki_p11_module_get(module, &m));
    CK_SLOT_ID slot;
    GUARD(smki_p11_find_token(m, u->token, &slot, NULL));
    CK_SESSION_HANDLE s;
    GUARD(smki_p11_open_session(m, slot, u->token, NULL, 0, &s));
    CK_FUNCTION_LIST *f = smki_p11_module_functions(m);
    CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
    CK_ATTRIBUTE tmpl[3] = {{CKA_CLASS, &cls, sizeof cls}};
    CK_ULONG nt = 1;
    if (u->has_object) tmpl[nt++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)u->object, strlen(u->object)};
    if (u->has_id) tmpl[nt++] = (CK_ATTRIBUTE){CKA_ID, (void *)u->id, u->id_len};
    CK_OBJECT_HANDLE h[2];
    CK_ULONG n = 0;
    CK_RV rv = f->C_FindObjectsInit(s, tmpl, nt);
    if (rv == CKR_OK) rv = f->C_FindObjects(s, h, 2, &n);
    f->C_FindObjectsFinal(s);
    ENSURE_GOTO(rv == CKR_OK, smki_p11_rv_class(rv), out, "token '%s': searching public keys: %s", u->token,
                smki_p11_rv_name(rv));
    ENSURE_GOTO(n > 0, SMKI_E_NOTFOUND, out, "token '%s': no public key '%s' (see 'smki key list')", u->token,
                u->has_object ? u->object : "(by id)");
    ENSURE_GOTO(n == 1, SMKI_E_USAGE, out, "token '%s': more than one public key matches; add id= to the URI",
                u->token);
    uint8_t point[SMKI_POINT_LEN];
    GUARD_GOTO(smki_p11_read_point(m, s, h[0], u->token, point), out);
    /* An SPKI around the point, so the usual loader checks curve and point. */
    static const uint8_t spki_prefix[] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d,
                                          0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01,
                                          0x07, 0x03, 0x42, 0x00};
    uint8_t spki[sizeof spki_prefix + SMKI_POINT_LEN];
    memcpy(spki, spki_prefix, sizeof spki_prefix);
    memcpy(spki + sizeof spki_prefix, point, SMKI_POINT_LEN);
    GUARD_GOTO(smki_pub_load(spki, sizeof spki, out), out);
out:
    smki_p11_close_session(m, s);
    return rc;
}

/* SoftHSM 2 (file store) rewrites a token's token.object in place at every login: a
 * process killed at that moment leaves it empty, and the token, with every key on it,
 * is gone. So smki keeps a copy beside it (token.object.smki), refreshed when it
 * changes, and puts it back when it finds the file empty; both under SoftHSM's own
 * lock of the file (token.lock, fcntl), so no SoftHSM writer is caught midway. */
static void token_file_guard(const char *tokdir)
{
    char obj[PATH_MAX + 64], bak[PATH_MAX + 64], lck[PATH_MAX + 64];
    if (snprintf(obj, sizeof obj, "%s/token.object", tokdir) >= (int)sizeof obj) return;
    snprintf(bak, sizeof bak, "%s/token.object.smki", tokdir);
    snprintf(lck, sizeof lck, "%s/token.lock", tokdir);
    int lfd = open(lck, O_RDWR | O_CLOEXEC);
    if (lfd < 0) return;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(lfd, F_SETLKW, &fl) == 0) {
        uint8_t *cur = NULL, *old = NULL;
        size_t cn = 0, on = 0;
        int has_cur = smki_file_read(obj, 1 << 16, &cur, &cn) == 0;
        int has_old = smki_file_read(bak, 1 << 16, &old, &on) == 0;
        smki_error_clear();
        if (has_cur && cn == 0 && has_old && on > 0) {
            if (smki_file_write_atomic(obj, old, on, 0600, 0) < 0) smki_error_clear(); /* the token back */
        } else if (has_cur && cn > 0 && (!has_old || on != cn || memcmp(old, cur, cn) != 0)) {
            if (smki_file_write_atomic(bak, cur, cn, 0600, 0) < 0) smki_error_clear();
        }
        free(cur);
        free(old);
    }
    close(lfd); /* releases the lock */
}

static void tokens_guard(const char *tokens)
{
    DIR *d = opendir(tokens);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char sub[PATH_MAX + 16];
        if (snprintf(sub, sizeof sub, "%s/%s", tokens, e->d_name) < (int)sizeof sub) token_file_guard(sub);
    }
    closedir(d);
}

int smki_softhsm_prepare(const char *dir)
{
    char tokens[PATH_MAX + 16], conf[PATH_MAX + 16], abs[PATH_MAX];
    GUARD(smki_mkdirs(dir, 0700));
    /* SoftHSM reads the token folder literally: make it absolute so the home works
     * from any working directory. */
    ENSURE(realpath(dir, abs) != NULL, SMKI_E_IO, "cannot resolve %s", dir);
    ENSURE(snprintf(tokens, sizeof tokens, "%s/tokens", abs) < (int)sizeof tokens, SMKI_E_USAGE,
           "HSM folder path too long");
    snprintf(conf, sizeof conf, "%s/softhsm2.conf", abs);
    GUARD(smki_mkdirs(tokens, 0700));
    struct stat st;
    if (stat(conf, &st) != 0) {
        char text[4400];
        int n = snprintf(text, sizeof text,
                         "# SoftHSM 2 configuration written by smki for this home's token.\n"
                         "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n"
                         "slots.removable = false\n",
                         tokens);
        GUARD(smki_file_write_atomic(conf, text, (size_t)n, 0600, 0));
    }
    tokens_guard(tokens);
    ENSURE(setenv("SOFTHSM2_CONF", conf, 1) == 0, SMKI_E_IO, "cannot set SOFTHSM2_CONF");
    return 0;
}

/* ---- Notes: small records kept on the token beside a key ---------------------------------- */

static const char NOTE_APP[] = "smki";

/* The data objects named name (up to cap; *n of them). */
static int note_find_all(p11_module *m, CK_SESSION_HANDLE s, const char *token, const char *name, CK_OBJECT_HANDLE *h,
                         CK_ULONG cap, CK_ULONG *n)
{
    CK_FUNCTION_LIST *f = smki_p11_module_functions(m);
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL on_token = CK_TRUE;
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls},
                           {CKA_TOKEN, &on_token, sizeof on_token},
                           {CKA_LABEL, (void *)name, strlen(name)},
                           {CKA_APPLICATION, (void *)NOTE_APP, sizeof NOTE_APP - 1}};
    *n = 0;
    CK_RV rv = f->C_FindObjectsInit(s, tmpl, 4);
    if (rv != CKR_OK) return smki_p11_fail_rv(rv, token, "searching data objects");
    rv = f->C_FindObjects(s, h, cap, n);
    f->C_FindObjectsFinal(s);
    if (rv != CKR_OK) return smki_p11_fail_rv(rv, token, "searching data objects");
    return 0;
}

static int note_session(const smki_hsm_opts *o, const smki_p11_uri *u, int rw, p11_module **m,
                        CK_SESSION_HANDLE *s)
{
    ENSURE(o && o->pin && *o->pin, SMKI_E_USAGE,
           "token '%s': its notes are read and written only after login: give the PIN (SMKI_PIN or --pin-file)",
           u->token);
    GUARD(smki_p11_module_get(smki_p11_module_choose(o, u->module_path[0] ? u->module_path : NULL), m));
    CK_SLOT_ID slot;
    CK_TOKEN_INFO ti;
    GUARD(smki_p11_find_token(*m, u->token, &slot, &ti));
    return smki_p11_open_session(*m, slot, u->token, o->pin, rw, s);
}

int smki_token_note_put(const smki_hsm_opts *o, const char *key_uri, const char *name, const uint8_t *val, size_t len)
{
    smki_p11_uri u;
    GUARD(smki_p11_uri_parse(key_uri, &u));
    ENSURE(u.has_token && name && *name && len, SMKI_E_USAGE, "a note needs the key's token, a name and a value");
    p11_module *m;
    CK_SESSION_HANDLE s;
    GUARD(note_session(o, &u, 1, &m, &s));
    CK_FUNCTION_LIST *f = smki_p11_module_functions(m);
    /* Replaced, not modified (tokens such as SoftHSM keep a data object's value fixed):
     * the new one made first, then the old ones destroyed, so a kill in between leaves
     * both, never none. */
    CK_OBJECT_HANDLE old[8], h;
    CK_ULONG n_old = 0;
    int rc = note_find_all(m, s, u.token, name, old, 8, &n_old);
    CK_RV rv = CKR_OK;
    if (rc == 0) {
        /* Private: read and written only by a session logged in with the PIN. */
        CK_OBJECT_CLASS cls = CKO_DATA;
        CK_BBOOL yes = CK_TRUE;
        CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls},
                               {CKA_TOKEN, &yes, sizeof yes},
                               {CKA_PRIVATE, &yes, sizeof yes},
                               {CKA_MODIFIABLE, &yes, sizeof yes},
                               {CKA_LABEL, (void *)name, strlen(name)},
                               {CKA_APPLICATION, (void *)NOTE_APP, sizeof NOTE_APP - 1},
                               {CKA_VALUE, (void *)val, len}};
        rv = f->C_CreateObject(s, tmpl, sizeof tmpl / sizeof tmpl[0], &h);
    }
    /* One another process replaced meanwhile is gone already: that is fine. */
    for (CK_ULONG i = 0; rc == 0 && rv == CKR_OK && i < n_old; i++) {
        rv = f->C_DestroyObject(s, old[i]);
        if (rv == CKR_OBJECT_HANDLE_INVALID) rv = CKR_OK;
    }
    if (rc == 0 && rv != CKR_OK) rc = smki_p11_fail_rv(rv, u.token, "writing a data object");
    smki_p11_close_session(m, s);
    return rc;
}

int smki_token_note_each(const smki_hsm_opts *o, const char *key_uri, const char *name, smki_note_fn fn, void *arg)
{
    smki_p11_uri u;
    GUARD(smki_p11_uri_parse(key_uri, &u));
    ENSURE(u.has_token && name && *name, SMKI_E_USAGE, "a note needs the key's token and a name");
    p11_module *m;
    CK_SESSION_HANDLE s;
    GUARD(note_session(o, &u, 0, &m, &s));
    CK_OBJECT_HANDLE h[8];
    CK_ULONG n = 0;
    int rc = note_find_all(m, s, u.token, name, h, 8, &n);
    if (rc == 0 && n == 0) rc = SMKI_E_NOTFOUND; /* without noise: callers test for it */
    for (CK_ULONG i = 0; rc == 0 && i < n; i++) {
        uint8_t val[512];
        CK_ATTRIBUTE v = {CKA_VALUE, val, sizeof val};
        CK_RV rv = smki_p11_module_functions(m)->C_GetAttributeValue(s, h[i], &v, 1);
        if (rv != CKR_OK) rc = smki_p11_fail_rv(rv, u.token, "reading a data object");
        else rc = fn(val, v.ulValueLen, arg);
    }
    smki_p11_close_session(m, s);
    return rc;
}

/* ---- Removing a key pair ------------------------------------------------------------------------ */

/* The SO PIN proved: a login as the Security Officer, then out again. PKCS#11 refuses
 * an SO login while the application has a read-only session with the token (the keys
 * this process has open, CKR_SESSION_READ_ONLY_EXISTS), so it is made in a child of
 * its own, which starts the module afresh; the token's answer comes back by a pipe. */
static int so_pin_check(const char *module, const char *token, const char *so_pin)
{
    int fds[2];
    ENSURE(pipe(fds) == 0, SMKI_E_IO, "pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return SMKI_FAIL(SMKI_E_IO, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        close(fds[0]);
        CK_RV rv = CKR_GENERAL_ERROR;
        p11_module *m;
        CK_SLOT_ID slot;
        CK_TOKEN_INFO ti;
        CK_SESSION_HANDLE s;
        /* The module started afresh: the sessions copied from the parent gone with it. */
        CK_C_INITIALIZE_ARGS args;
        memset(&args, 0, sizeof args);
        args.flags = CKF_OS_LOCKING_OK;
        int ready = smki_p11_module_get(module, &m) == 0;
        if (ready) {
            smki_p11_module_functions(m)->C_Finalize(NULL);
            CK_RV irv = smki_p11_module_functions(m)->C_Initialize(&args);
            ready = irv == CKR_OK || irv == CKR_CRYPTOKI_ALREADY_INITIALIZED;
        }
        if (ready && smki_p11_find_token(m, token, &slot, &ti) == 0 && smki_p11_open_session(m, slot, token, NULL, 1, &s) == 0) {
            CK_FUNCTION_LIST *f = smki_p11_module_functions(m);
            rv = f->C_Login(s, CKU_SO, (CK_UTF8CHAR *)so_pin, strlen(so_pin));
            if (rv == CKR_OK) f->C_Logout(s);
            f->C_CloseSession(s);
        }
        ssize_t w = write(fds[1], &rv, sizeof rv);
        _exit(w == (ssize_t)sizeof rv ? 0 : 1);
    }
    close(fds[1]);
    CK_RV rv = CKR_GENERAL_ERROR;
    ssize_t r = read(fds[0], &rv, sizeof rv);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (r != (ssize_t)sizeof rv) rv = CKR_GENERAL_ERROR;
    if (rv != CKR_OK) return smki_p11_fail_rv(rv, token, "SO login (removing a key needs the SO PIN)");
    return 0;
}

int smki_key_destroy(const smki_hsm_opts *o, const char *token_label, const char *key_label, const char *so_pin)
{
    ENSURE(token_label && key_label && *key_label, SMKI_E_USAGE, "name the token and the key's label");
    ENSURE(so_pin && *so_pin, SMKI_E_USAGE,
           "removing a key from token '%s' needs its SO PIN (SMKI_SO_PIN or --so-pin-file)", token_label);
    ENSURE(o && o->pin && *o->pin, SMKI_E_USAGE,
           "removing a key from token '%s' needs its user PIN (SMKI_PIN or --pin-file)", token_label);
    p11_module *m;
    GUARD(smki_p11_module_get(smki_p11_module_choose(o, NULL), &m));
    CK_SLOT_ID slot;
    CK_TOKEN_INFO ti;
    GUARD(smki_p11_find_token(m, token_label, &slot, &ti));
    GUARD(so_pin_check(smki_p11_module_choose(o, NULL), token_label, so_pin));
    CK_SESSION_HANDLE s;
    GUARD(smki_p11_open_session(m, slot, token_label, o->pin, 1, &s));
    CK_FUNCTION_LIST *f = smki_p11_module_functions(m);
    CK_BBOOL on_token = CK_TRUE;
    CK_ATTRIBUTE tmpl[] = {{CKA_LABEL, (void *)key_label, strlen(key_label)}, {CKA_TOKEN, &on_token, sizeof on_token}};
    CK_OBJECT_HANDLE h[8];
    CK_ULONG n = 0;
    int rc = 0;
    CK_RV rv = f->C_FindObjectsInit(s, tmpl, 2);
    if (rv == CKR_OK) {
        rv = f->C_FindObjects(s, h, 8, &n);
        f->C_FindObjectsFinal(s);
    }
    if (rv != CKR_OK) rc = smki_p11_fail_rv(rv, token_label, "searching keys");
    if (rc == 0 && n == 0) rc = SMKI_FAIL(SMKI_E_NOTFOUND, "token '%s' has no key '%s'", token_label, key_label);
    for (CK_ULONG i = 0; rc == 0 && i < n; i++) {
        rv = f->C_DestroyObject(s, h[i]);
        if (rv != CKR_OK) rc = smki_p11_fail_rv(rv, token_label, "destroying a key object");
    }
    smki_p11_close_session(m, s);
    return rc;
}

int smki_key_label_used(const smki_hsm_opts *o, const char *token_label, const char *label, int *used)
{
    ENSURE(token_label && label && used, SMKI_E_INTERNAL, "smki_key_label_used: missing argument");
    p11_module *m;
    GUARD(smki_p11_module_get(smki_p11_module_choose(o, NULL), &m));
    CK_SLOT_ID slot;
    CK_TOKEN_INFO ti;
    GUARD(smki_p11_find_token(m, token_label, &slot, &ti));
    CK_SESSION_HANDLE s;
    GUARD(smki_p11_open_session(m, slot, token_label, o ? o->pin : NULL, 0, &s));
    CK_ULONG n = 0;
    int rc = smki_p11_count_labelled(m, s, token_label, label, &n);
    smki_p11_close_session(m, s);
    *used = n > 0;
    return rc;
}
