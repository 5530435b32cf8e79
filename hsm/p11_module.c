/* PKCS#11 modules, loaded once per process (and initialised again in a forked child,
 * as PKCS#11 requires), and the one place CK_RV values become smki errors. */
#include <dlfcn.h>
#include <openssl/err.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "p11.h"

struct p11_module {
    char path[512];
    void *dl;
    CK_FUNCTION_LIST *f;
    pid_t pid; /* the process that called C_Initialize */
    struct p11_module *next;
};

static pthread_mutex_t modules_lock = PTHREAD_MUTEX_INITIALIZER;
static p11_module *modules;

const char *smki_softhsm_default_module(void)
{
    static const char *candidates[] = {"/usr/lib/softhsm/libsofthsm2.so",
                                       "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
                                       "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so"};
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++)
        if (access(candidates[i], R_OK) == 0) return candidates[i];
    return candidates[0];
}

/* Initialisation parameters per module path, for the process: recorded when options
 * carrying them choose the module, read when it is initialised (here and by libp11). */
#define INIT_ARGS_MAX 8
static struct {
    char path[512];
    char args[1024];
} init_args[INIT_ARGS_MAX];
static size_t n_init_args;

static void record_init_args(const char *path, const char *args)
{
    pthread_mutex_lock(&modules_lock);
    size_t i = 0;
    while (i < n_init_args && strcmp(init_args[i].path, path) != 0) i++;
    if (i == n_init_args && n_init_args < INIT_ARGS_MAX && strlen(path) < sizeof init_args[0].path) {
        snprintf(init_args[i].path, sizeof init_args[i].path, "%s", path);
        n_init_args++;
    }
    if (i < n_init_args) snprintf(init_args[i].args, sizeof init_args[i].args, "%s", args);
    pthread_mutex_unlock(&modules_lock);
}

/* Called with modules_lock held, or by libp11's loader (smki_p11_module_init_args). */
static const char *find_init_args(const char *path)
{
    for (size_t i = 0; i < n_init_args; i++)
        if (strcmp(init_args[i].path, path) == 0) return init_args[i].args;
    return NULL;
}

const char *smki_p11_module_init_args(const char *path)
{
    pthread_mutex_lock(&modules_lock);
    const char *a = find_init_args(path);
    pthread_mutex_unlock(&modules_lock);
    return a;
}

const char *smki_p11_module_choose(const smki_hsm_opts *o, const char *uri_module)
{
    const char *path = NULL;
    if (o && o->module && *o->module) path = o->module;
    else if (uri_module && *uri_module) path = uri_module;
    else if (getenv("SMKI_PKCS11_MODULE") && *getenv("SMKI_PKCS11_MODULE")) path = getenv("SMKI_PKCS11_MODULE");
    else path = smki_softhsm_default_module();
    if (o && o->init_args && *o->init_args) record_init_args(path, o->init_args);
    return path;
}

static int module_initialize(p11_module *m)
{
    CK_C_INITIALIZE_ARGS args;
    memset(&args, 0, sizeof args);
    args.flags = CKF_OS_LOCKING_OK;
    /* NSS softokn reads its parameters from pReserved (it cannot start without them). */
    args.pReserved = (void *)find_init_args(m->path);
    CK_RV rv = m->f->C_Initialize(&args);
    /* libp11 may have initialised the same module first: that is fine. */
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED && args.pReserved)
        return SMKI_FAIL(smki_p11_rv_class(rv), "PKCS#11 module %s: C_Initialize with [hsm] init_args '%s': %s", m->path,
                         (const char *)args.pReserved, smki_p11_rv_name(rv));
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
        return SMKI_FAIL(smki_p11_rv_class(rv),
                         "PKCS#11 module %s: C_Initialize: %s (a module that needs initialisation parameters, as NSS "
                         "softokn does, gets them from [hsm] init_args)",
                         m->path, smki_p11_rv_name(rv));
    m->pid = getpid();
    return 0;
}

static int module_load(const char *path, p11_module **out)
{
    int rc = 0;
    p11_module *m = calloc(1, sizeof *m);
    ENSURE(m != NULL, SMKI_E_NOMEM, "out of memory loading %s", path);
    ENSURE_GOTO(strlen(path) < sizeof m->path, SMKI_E_USAGE, fail, "PKCS#11 module path too long: %.64s", path);
    strcpy(m->path, path);
    m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    ENSURE_GOTO(m->dl != NULL, SMKI_E_HSM, fail, "cannot load PKCS#11 module %s: %s", path, dlerror());
    CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(m->dl, "C_GetFunctionList");
    ENSURE_GOTO(get != NULL, SMKI_E_HSM, fail, "%s is not a PKCS#11 module (no C_GetFunctionList)", path);
    CK_RV rv = get(&m->f);
    ENSURE_GOTO(rv == CKR_OK && m->f, SMKI_E_HSM, fail, "%s: C_GetFunctionList failed: %s", path, smki_p11_rv_name(rv));
    GUARD_GOTO(module_initialize(m), fail);
    *out = m;
    return 0;
fail:
    if (m->dl) dlclose(m->dl);
    free(m);
    return rc;
}

int smki_p11_module_get(const char *path, p11_module **out)
{
    int rc = 0;
    pthread_mutex_lock(&modules_lock);
    p11_module *m = modules;
    while (m && strcmp(m->path, path) != 0) m = m->next;
    if (!m) {
        GUARD_GOTO(module_load(path, &m), out);
        m->next = modules;
        modules = m;
    } else if (m->pid != getpid()) {
        GUARD_GOTO(module_initialize(m), out);
    }
    *out = m;
out:
    pthread_mutex_unlock(&modules_lock);
    return rc;
}

CK_FUNCTION_LIST *smki_p11_module_functions(p11_module *m) { return m->f; }
const char *smki_p11_module_path(const p11_module *m) { return m->path; }

static const struct {
    CK_RV rv;
    const char *name;
    const char *why;
    int code;
} rv_table[] = {
    {CKR_OK, "CKR_OK", "", SMKI_OK},
    {CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT", "wrong PIN", SMKI_E_REFUSED},
    {CKR_PIN_LOCKED, "CKR_PIN_LOCKED", "PIN locked after too many wrong tries", SMKI_E_REFUSED},
    {CKR_PIN_LEN_RANGE, "CKR_PIN_LEN_RANGE", "PIN too short or too long", SMKI_E_USAGE},
    {CKR_PIN_INVALID, "CKR_PIN_INVALID", "PIN has invalid characters", SMKI_E_USAGE},
    {CKR_USER_PIN_NOT_INITIALIZED, "CKR_USER_PIN_NOT_INITIALIZED", "token has no user PIN", SMKI_E_HSM},
    {CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN", "no PIN given (set SMKI_PIN or --pin-file)", SMKI_E_REFUSED},
    {CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR", "the device reported an error", SMKI_E_HSM},
    {CKR_DEVICE_REMOVED, "CKR_DEVICE_REMOVED", "the device was removed", SMKI_E_HSM},
    {CKR_DEVICE_MEMORY, "CKR_DEVICE_MEMORY", "the device is out of memory", SMKI_E_HSM},
    {CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT", "no token in the slot", SMKI_E_HSM},
    {CKR_TOKEN_NOT_RECOGNIZED, "CKR_TOKEN_NOT_RECOGNIZED", "token not recognised", SMKI_E_HSM},
    {CKR_SLOT_ID_INVALID, "CKR_SLOT_ID_INVALID", "no such slot", SMKI_E_HSM},
    {CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID", "session lost", SMKI_E_HSM},
    {CKR_SESSION_COUNT, "CKR_SESSION_COUNT", "too many sessions", SMKI_E_HSM},
    {CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID", "key handle no longer valid", SMKI_E_HSM},
    {CKR_KEY_FUNCTION_NOT_PERMITTED, "CKR_KEY_FUNCTION_NOT_PERMITTED", "the key may not be used so",
     SMKI_E_REFUSED},
    {CKR_KEY_TYPE_INCONSISTENT, "CKR_KEY_TYPE_INCONSISTENT", "wrong key type for the operation", SMKI_E_REFUSED},
    {CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID", "mechanism not supported", SMKI_E_HSM},
    {CKR_ATTRIBUTE_VALUE_INVALID, "CKR_ATTRIBUTE_VALUE_INVALID", "bad attribute value", SMKI_E_HSM},
    {CKR_ATTRIBUTE_SENSITIVE, "CKR_ATTRIBUTE_SENSITIVE", "attribute is sensitive", SMKI_E_REFUSED},
    {CKR_ATTRIBUTE_TYPE_INVALID, "CKR_ATTRIBUTE_TYPE_INVALID", "attribute not present", SMKI_E_HSM},
    {CKR_TEMPLATE_INCONSISTENT, "CKR_TEMPLATE_INCONSISTENT", "template inconsistent", SMKI_E_HSM},
    {CKR_TEMPLATE_INCOMPLETE, "CKR_TEMPLATE_INCOMPLETE", "template incomplete", SMKI_E_HSM},
    {CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED", "module not initialised", SMKI_E_HSM},
    {CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR", "general error", SMKI_E_HSM},
    {CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED", "function failed", SMKI_E_HSM},
    {CKR_HOST_MEMORY, "CKR_HOST_MEMORY", "out of host memory", SMKI_E_NOMEM},
    {CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD", "bad arguments", SMKI_E_INTERNAL},
    {CKR_OPERATION_ACTIVE, "CKR_OPERATION_ACTIVE", "another operation is active", SMKI_E_HSM},
    {CKR_SESSION_READ_ONLY, "CKR_SESSION_READ_ONLY", "session is read-only", SMKI_E_HSM},
    {CKR_BUFFER_TOO_SMALL, "CKR_BUFFER_TOO_SMALL", "the module's answer is longer than expected", SMKI_E_HSM},
};

static size_t rv_index(CK_RV rv)
{
    for (size_t i = 0; i < sizeof rv_table / sizeof rv_table[0]; i++)
        if (rv_table[i].rv == rv && rv_table[i].name[0]) return i;
    return (size_t)-1;
}

const char *smki_p11_rv_name(CK_RV rv)
{
    static _Thread_local char unknown[32];
    size_t i = rv_index(rv);
    if (i != (size_t)-1) return rv_table[i].name;
    snprintf(unknown, sizeof unknown, "CKR_0x%lx", (unsigned long)rv);
    return unknown;
}

int smki_p11_rv_class(CK_RV rv)
{
    size_t i = rv_index(rv);
    return i == (size_t)-1 ? SMKI_E_HSM : rv_table[i].code;
}

int smki_p11_fail_rv(CK_RV rv, const char *token, const char *operation)
{
    size_t i = rv_index(rv);
    const char *why = i == (size_t)-1 ? "unexpected return value" : rv_table[i].why;
    int code = smki_p11_rv_class(rv);
    return SMKI_FAIL(code, "token '%s': %s: %s (%s)", token, operation, smki_p11_rv_name(rv), why);
}

CK_RV smki_p11_take_libp11_rv(void)
{
    CK_RV found = CKR_GENERAL_ERROR;
    unsigned long e;
    while ((e = ERR_get_error()) != 0) {
        unsigned long reason = (unsigned long)ERR_GET_REASON(e);
        /* CK_RVs are below 0x1000 and libp11's own reasons start at 1025; only the
         * first group are device answers. */
        if (ERR_GET_LIB(e) >= ERR_LIB_USER && reason < 1025 && rv_index((CK_RV)reason) != (size_t)-1)
            found = (CK_RV)reason;
    }
    return found;
}
