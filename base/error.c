/* The thread's error context: one code, one message that says what failed and with
 * which input, and where it was raised. The CLI prints it; tests assert on it. */
#include "base.h"

#include <openssl/err.h>
#include <stdio.h>
#include <string.h>

static _Thread_local int err_code;
static _Thread_local char err_msg[SMKI_ERR_MSG_MAX];
static _Thread_local char err_origin[96];

int smki_error_code(void) { return err_code; }
const char *smki_error_msg(void) { return err_msg; }
const char *smki_error_origin(void) { return err_origin; }

void smki_error_clear(void)
{
    err_code = 0;
    err_msg[0] = '\0';
    err_origin[0] = '\0';
}

static const struct {
    int code;
    const char *name;
    int exit_code;
} error_table[] = {
    {SMKI_OK, "ok", 0},
    {SMKI_E_USAGE, "usage", 1},
    {SMKI_E_INPUT, "input", 2},
    {SMKI_E_REFUSED, "refused", 2},
    {SMKI_E_VERIFY, "verify", 2},
    {SMKI_E_NOTFOUND, "not_found", 2},
    {SMKI_E_EXISTS, "exists", 2},
    {SMKI_E_HSM, "hsm", 3},
    {SMKI_E_STORE, "store", 3},
    {SMKI_E_IO, "io", 3},
    {SMKI_E_NOMEM, "nomem", 3},
    {SMKI_E_CRYPTO, "crypto", 3},
    {SMKI_E_LOCKED, "locked", 3},
    {SMKI_E_CORRUPT, "corrupt", 3},
    {SMKI_E_INTERNAL, "internal", 3},
};

const char *smki_error_name(int code)
{
    for (size_t i = 0; i < sizeof error_table / sizeof error_table[0]; i++)
        if (error_table[i].code == code) return error_table[i].name;
    return "internal";
}

int smki_error_exit_code(int code)
{
    for (size_t i = 0; i < sizeof error_table / sizeof error_table[0]; i++)
        if (error_table[i].code == code) return error_table[i].exit_code;
    return 3;
}

static void set_origin(const char *file, int line)
{
    const char *base = strrchr(file, '/');
    snprintf(err_origin, sizeof err_origin, "%s:%d", base ? base + 1 : file, line);
}

int smki_fail_at(int code, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_msg, sizeof err_msg, fmt, ap);
    va_end(ap);
    err_code = code;
    set_origin(file, line);
    return code;
}

/* Append OpenSSL's queued reasons ("; openssl: reason, reason") and drain the queue
 * so that a later failure does not report a stale cause. */
static void append_ssl_errors(void)
{
    unsigned long e;
    size_t used = strlen(err_msg);
    int first = 1;
    while ((e = ERR_get_error()) != 0) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (used + 16 >= sizeof err_msg) continue;
        int n = snprintf(err_msg + used, sizeof err_msg - used, "%s%s", first ? " (openssl: " : "; ", buf);
        if (n > 0) used += (size_t)n < sizeof err_msg - used ? (size_t)n : sizeof err_msg - used - 1;
        first = 0;
    }
    if (!first && used + 2 < sizeof err_msg) strcat(err_msg, ")");
}

int smki_fail_ssl_at(int code, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_msg, sizeof err_msg, fmt, ap);
    va_end(ap);
    append_ssl_errors();
    err_code = code;
    set_origin(file, line);
    return code;
}

int smki_error_wrap(const char *fmt, ...)
{
    char joined[2 * SMKI_ERR_MSG_MAX + 2];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(joined, SMKI_ERR_MSG_MAX, fmt, ap);
    va_end(ap);
    size_t used = n < 0 ? 0 : ((size_t)n < SMKI_ERR_MSG_MAX ? (size_t)n : SMKI_ERR_MSG_MAX - 1);
    memcpy(joined + used, ": ", 2);
    memcpy(joined + used + 2, err_msg, strlen(err_msg) + 1);
    size_t total = strlen(joined);
    if (total >= sizeof err_msg) total = sizeof err_msg - 1;
    memcpy(err_msg, joined, total);
    err_msg[total] = '\0';
    if (err_code == 0) err_code = SMKI_E_INTERNAL;
    return err_code;
}
