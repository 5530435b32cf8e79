/* A fault-injecting PKCS#11 module for tests: it loads the real module named by
 * SMKI_SHIM_MODULE (default SoftHSM 2) and passes every call through, except that
 * the functions listed in SMKI_SHIM_FAIL (e.g. "C_Sign,C_Login") return the CK_RV in
 * SMKI_SHIM_RV (default CKR_DEVICE_ERROR, 0x30). The variables are read on every
 * call, so a test can make a working token fail midway.
 * With SMKI_SHIM_FORK_STRICT set, a session used for signing by another process than
 * the one that opened it answers CKR_DEVICE_ERROR: what a real HSM may do to a
 * forked child that reuses its parent's sessions (SoftHSM lets it pass), and so does
 * signing with a key copy (C_CopyObject) made by another process.
 * SMKI_SHIM_SIGN_LOST_AT=n: the n-th C_Sign after the variable was set or changed
 * answers CKR_SESSION_HANDLE_INVALID once (a session lost midway, for one thread).
 * SMKI_SHIM_SIGNINIT_DELAY_US=u: C_SignInit sleeps u microseconds first (widens the
 * window in which other threads are signing).
 * C_InitPIN and C_CreateObject fail on the same list (a token left without its user PIN,
 * an anchor that cannot be written).
 * SMKI_SHIM_COPY_UNUSABLE: C_SignInit and C_DeriveKey with a key copy made through the
 * shim answer CKR_KEY_FUNCTION_NOT_PERMITTED (a copy that reads back right but does
 * not work). smki_shim_copies() counts the copies made. */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE
#endif
#include <dlfcn.h>
#include <p11-kit/pkcs11.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static CK_FUNCTION_LIST *real;
static CK_FUNCTION_LIST shim;

static int should_fail(const char *name)
{
    const char *list = getenv("SMKI_SHIM_FAIL");
    if (!list) return 0;
    size_t n = strlen(name);
    for (const char *p = strstr(list, name); p; p = strstr(p + 1, name))
        if ((p == list || p[-1] == ',') && (p[n] == '\0' || p[n] == ',')) return 1;
    return 0;
}

static CK_RV injected(void)
{
    const char *rv = getenv("SMKI_SHIM_RV");
    return rv ? (CK_RV)strtoul(rv, NULL, 0) : CKR_DEVICE_ERROR;
}

/* Which process opened each session (handles are small integers in SoftHSM). */
#define OWNERS 4096
static pid_t owner[OWNERS];

static int foreign_session(CK_SESSION_HANDLE s)
{
    return getenv("SMKI_SHIM_FORK_STRICT") && s < OWNERS && owner[s] != 0 && owner[s] != getpid();
}

static CK_RV shim_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify,
                              CK_SESSION_HANDLE_PTR s)
{
    CK_RV rv = real->C_OpenSession(slot, flags, app, notify, s);
    if (rv == CKR_OK && *s < OWNERS) owner[*s] = getpid();
    return rv;
}

static CK_RV shim_Login(CK_SESSION_HANDLE s, CK_USER_TYPE u, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
    return should_fail("C_Login") ? injected() : real->C_Login(s, u, pin, len);
}
static int foreign_copy(CK_OBJECT_HANDLE o);
static int unusable_copy(CK_OBJECT_HANDLE o);
static CK_RV shim_SignInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k)
{
    const char *delay = getenv("SMKI_SHIM_SIGNINIT_DELAY_US");
    if (delay) usleep((useconds_t)strtoul(delay, NULL, 10));
    if (foreign_session(s) || foreign_copy(k)) return CKR_DEVICE_ERROR;
    if (unusable_copy(k)) return CKR_KEY_FUNCTION_NOT_PERMITTED;
    return should_fail("C_SignInit") ? injected() : real->C_SignInit(s, m, k);
}

static pthread_mutex_t lost_lock = PTHREAD_MUTEX_INITIALIZER;

/* Whether this C_Sign is the one SMKI_SHIM_SIGN_LOST_AT names. */
static int sign_lost_now(void)
{
    static char armed[32];
    static unsigned long calls;
    const char *at = getenv("SMKI_SHIM_SIGN_LOST_AT");
    pthread_mutex_lock(&lost_lock);
    if (!at) {
        armed[0] = '\0';
    } else if (strncmp(armed, at, sizeof armed - 1) != 0) {
        strncpy(armed, at, sizeof armed - 1);
        calls = 0;
    }
    int now = at && ++calls == strtoul(at, NULL, 10);
    pthread_mutex_unlock(&lost_lock);
    return now;
}

static CK_RV shim_Sign(CK_SESSION_HANDLE s, CK_BYTE_PTR d, CK_ULONG dl, CK_BYTE_PTR sig, CK_ULONG_PTR sl)
{
    if (foreign_session(s)) return CKR_DEVICE_ERROR;
    int lost = sig && sign_lost_now();
    if (!lost && !should_fail("C_Sign")) return real->C_Sign(s, d, dl, sig, sl);
    /* PKCS#11 5.12: a failing C_Sign ends the signing operation; finish the real one
     * so that the session is as a real failing device would leave it. */
    CK_BYTE scratch[256];
    CK_ULONG len = sizeof scratch;
    real->C_Sign(s, d, dl, scratch, &len);
    return lost ? CKR_SESSION_HANDLE_INVALID : injected();
}
static CK_RV shim_DeriveKey(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE b, CK_ATTRIBUTE_PTR t,
                            CK_ULONG n, CK_OBJECT_HANDLE_PTR k)
{
    if (unusable_copy(b)) return CKR_KEY_FUNCTION_NOT_PERMITTED;
    return should_fail("C_DeriveKey") ? injected() : real->C_DeriveKey(s, m, b, t, n, k);
}
/* A module that will not copy keys (SMKI_SHIM_FAIL=C_CopyObject with
 * CKR_ACTION_PROHIBITED, ...), or whose copies do not keep their original's
 * protection: with SMKI_SHIM_COPY_EXTRACTABLE set, the copies it made read back
 * CKA_EXTRACTABLE true (the caller must destroy and not use them). */
#define COPIES 256
static CK_OBJECT_HANDLE copies[COPIES];
static pid_t copy_owner[COPIES];
static int ncopies;
static int copies_made;
static pthread_mutex_t copy_lock = PTHREAD_MUTEX_INITIALIZER;

int smki_shim_copies(void);
int smki_shim_copies(void)
{
    pthread_mutex_lock(&copy_lock);
    int n = copies_made;
    pthread_mutex_unlock(&copy_lock);
    return n;
}

static int unusable_copy(CK_OBJECT_HANDLE o)
{
    if (!getenv("SMKI_SHIM_COPY_UNUSABLE")) return 0;
    pthread_mutex_lock(&copy_lock);
    int found = 0;
    for (int c = 0; c < ncopies && !found; c++) found = copies[c] == o;
    pthread_mutex_unlock(&copy_lock);
    return found;
}

/* In strict mode a copy made by another process is not this one's to use either. */
static int foreign_copy(CK_OBJECT_HANDLE o)
{
    if (!getenv("SMKI_SHIM_FORK_STRICT")) return 0;
    for (int c = 0; c < ncopies; c++)
        if (copies[c] == o && copy_owner[c] != getpid()) return 1;
    return 0;
}

static CK_RV shim_CopyObject(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR t, CK_ULONG n,
                             CK_OBJECT_HANDLE_PTR out)
{
    if (should_fail("C_CopyObject")) return injected();
    CK_RV rv = real->C_CopyObject(s, o, t, n, out);
    pthread_mutex_lock(&copy_lock);
    if (rv == CKR_OK) copies_made++;
    if (rv == CKR_OK && ncopies < COPIES) {
        copy_owner[ncopies] = getpid();
        copies[ncopies++] = *out;
    }
    pthread_mutex_unlock(&copy_lock);
    return rv;
}
static CK_RV shim_GetAttributeValue(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR t, CK_ULONG n)
{
    CK_RV rv = real->C_GetAttributeValue(s, o, t, n);
    if (rv != CKR_OK || !getenv("SMKI_SHIM_COPY_EXTRACTABLE")) return rv;
    for (int c = 0; c < ncopies; c++)
        if (copies[c] == o)
            for (CK_ULONG i = 0; i < n; i++)
                if (t[i].type == CKA_EXTRACTABLE && t[i].pValue && t[i].ulValueLen == sizeof(CK_BBOOL))
                    *(CK_BBOOL *)t[i].pValue = CK_TRUE;
    return rv;
}
static CK_RV shim_GenerateKeyPair(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR pt, CK_ULONG pn,
                                  CK_ATTRIBUTE_PTR kt, CK_ULONG kn, CK_OBJECT_HANDLE_PTR pub,
                                  CK_OBJECT_HANDLE_PTR priv)
{
    return should_fail("C_GenerateKeyPair") ? injected() : real->C_GenerateKeyPair(s, m, pt, pn, kt, kn, pub, priv);
}

static CK_RV shim_InitPIN(CK_SESSION_HANDLE s, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
    return should_fail("C_InitPIN") ? injected() : real->C_InitPIN(s, pin, len);
}
static CK_RV shim_CreateObject(CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_HANDLE_PTR h)
{
    return should_fail("C_CreateObject") ? injected() : real->C_CreateObject(s, t, n, h);
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out)
{
    if (!real) {
        const char *path = getenv("SMKI_SHIM_MODULE");
        void *dl = dlopen(path ? path : "/usr/lib/softhsm/libsofthsm2.so", RTLD_NOW | RTLD_LOCAL);
        if (!dl) return CKR_GENERAL_ERROR;
        CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList");
        if (!get || get(&real) != CKR_OK) return CKR_GENERAL_ERROR;
        shim = *real;
        shim.C_OpenSession = shim_OpenSession;
        shim.C_Login = shim_Login;
        shim.C_SignInit = shim_SignInit;
        shim.C_Sign = shim_Sign;
        shim.C_DeriveKey = shim_DeriveKey;
        shim.C_GenerateKeyPair = shim_GenerateKeyPair;
        shim.C_CopyObject = shim_CopyObject;
        shim.C_GetAttributeValue = shim_GetAttributeValue;
        shim.C_InitPIN = shim_InitPIN;
        shim.C_CreateObject = shim_CreateObject;
    }
    *out = &shim;
    return CKR_OK;
}
