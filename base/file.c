/* Files: bounded reads and atomic writes. Nothing smki writes is ever left
 * half-written: a temporary is synced and renamed into place. */
#define _POSIX_C_SOURCE 200809L
#include "base.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void smki_wipe(void *p, size_t len)
{
    if (p && len) OPENSSL_cleanse(p, len);
}

int smki_file_read(const char *path, size_t max, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    int rc = 0;
    uint8_t *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ENSURE(fd >= 0, errno == ENOENT ? SMKI_E_NOTFOUND : SMKI_E_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    ENSURE_GOTO(fstat(fd, &st) == 0, SMKI_E_IO, out, "cannot stat %s: %s", path, strerror(errno));
    ENSURE_GOTO(S_ISREG(st.st_mode), SMKI_E_INPUT, out, "%s is not a regular file", path);
    ENSURE_GOTO((size_t)st.st_size <= max, SMKI_E_INPUT, out, "%s is %lld octets, over the limit of %zu", path,
                (long long)st.st_size, max);
    buf = malloc((size_t)st.st_size + 1);
    ENSURE_GOTO(buf != NULL, SMKI_E_NOMEM, out, "out of memory reading %s", path);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR) continue;
        ENSURE_GOTO(n >= 0, SMKI_E_IO, out, "cannot read %s: %s", path, strerror(errno));
        if (n == 0) break;
        got += (size_t)n;
    }
    buf[got] = 0; /* callers that parse text may rely on a terminator */
    *out = buf;
    *out_len = got;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return rc;
}

static int write_all(int fd, const uint8_t *p, size_t len, const char *path)
{
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        ENSURE(n > 0, SMKI_E_IO, "cannot write %s: %s", path, strerror(errno));
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int fsync_dir_of(const char *path)
{
    char copy[4096];
    ENSURE(strlen(path) < sizeof copy, SMKI_E_USAGE, "path too long: %.64s...", path);
    strcpy(copy, path);
    const char *dir = dirname(copy);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ENSURE(fd >= 0, SMKI_E_IO, "cannot open folder %s: %s", dir, strerror(errno));
    int ok = fsync(fd) == 0 || errno == EINVAL;
    close(fd);
    ENSURE(ok, SMKI_E_IO, "cannot sync folder %s: %s", dir, strerror(errno));
    return 0;
}

int smki_file_write_atomic(const char *path, const void *data, size_t len, int mode, int exclusive)
{
    int rc = 0;
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    ENSURE(n > 0 && (size_t)n < sizeof tmp, SMKI_E_USAGE, "path too long: %.64s...", path);
    if (exclusive) ENSURE(access(path, F_OK) != 0, SMKI_E_EXISTS, "%s exists; refusing to replace it", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)mode);
    ENSURE(fd >= 0, SMKI_E_IO, "cannot create %s: %s", tmp, strerror(errno));
    GUARD_GOTO(write_all(fd, data, len, tmp), fail);
    ENSURE_GOTO(fsync(fd) == 0, SMKI_E_IO, fail, "cannot sync %s: %s", tmp, strerror(errno));
    close(fd);
    fd = -1;
    if (exclusive) {
        /* link() fails if the target appeared meanwhile: no race replaces it. */
        ENSURE_GOTO(link(tmp, path) == 0, errno == EEXIST ? SMKI_E_EXISTS : SMKI_E_IO, fail,
                    "cannot create %s: %s", path, strerror(errno));
        unlink(tmp);
    } else {
        ENSURE_GOTO(rename(tmp, path) == 0, SMKI_E_IO, fail, "cannot move %s into place: %s", path, strerror(errno));
    }
    return fsync_dir_of(path);
fail:
    if (fd >= 0) close(fd);
    unlink(tmp);
    return rc;
}

int smki_file_overwrite(const char *path, const void *data, size_t len, int mode)
{
    int rc = 0;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) return smki_file_write_atomic(path, data, len, mode, 0);
    ENSURE(fd >= 0, SMKI_E_IO, "cannot open %s to write it: %s", path, strerror(errno));
    GUARD_GOTO(write_all(fd, data, len, path), out);
    ENSURE_GOTO(ftruncate(fd, (off_t)len) == 0, SMKI_E_IO, out, "cannot cut %s to %zu octets: %s", path, len,
                strerror(errno));
    ENSURE_GOTO(fdatasync(fd) == 0, SMKI_E_IO, out, "cannot sync %s: %s", path, strerror(errno));
out:
    close(fd);
    return rc;
}

int smki_file_check_new(const char *path)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    ENSURE(n > 0 && (size_t)n < sizeof tmp, SMKI_E_USAGE, "path too long: %.64s...", path);
    ENSURE(access(path, F_OK) != 0, SMKI_E_EXISTS, "%s exists: it is never replaced", path);
    /* The temporary smki_file_write_atomic will make, made and removed now. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ENSURE(fd >= 0, SMKI_E_IO, "cannot write %s (%s): nothing was done", path, strerror(errno));
    close(fd);
    unlink(tmp);
    return 0;
}

int smki_dir_sweep_tmp(const char *dir)
{
    DIR *d = opendir(dir);
    ENSURE(d, SMKI_E_IO, "cannot read the folder %s: %s", dir, strerror(errno));
    int fd = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        /* "<name>.tmp.<pid>": smki_file_write_atomic's, of a process that is gone. */
        const char *t = strstr(e->d_name, ".tmp.");
        if (!t || t == e->d_name) continue;
        char *end = NULL;
        long pid = strtol(t + 5, &end, 10);
        if (pid <= 0 || !end || *end || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* still running (or not ours to judge) */
        unlinkat(fd, e->d_name, 0);
    }
    closedir(d);
    return 0;
}

int smki_mkdirs(const char *path, int mode)
{
    char buf[4096];
    size_t len = strlen(path);
    ENSURE(len > 0 && len < sizeof buf, SMKI_E_USAGE, "bad folder path '%.64s'", path);
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, (mode_t)mode) != 0 && errno != EEXIST)
            return SMKI_FAIL(SMKI_E_IO, "cannot create folder %s: %s", buf, strerror(errno));
        buf[i] = saved;
    }
    struct stat st;
    ENSURE(stat(path, &st) == 0 && S_ISDIR(st.st_mode), SMKI_E_IO, "%s is not a folder", path);
    return 0;
}

int smki_secret_read_file(const char *path, char *out, size_t cap)
{
    struct stat st;
    if (stat(path, &st) == 0 && (st.st_mode & (S_IROTH | S_IWOTH)))
        return SMKI_FAIL(SMKI_E_REFUSED,
                         "secret file %s is %s by every user (mode %04o): take its secret as known, choose a new "
                         "one, and keep it in a file only its owner (or the service's group) can read "
                         "(chmod 600 or 640)",
                         path, (st.st_mode & S_IROTH) ? "readable" : "writable", (unsigned)(st.st_mode & 07777));
    uint8_t *buf = NULL;
    size_t len = 0;
    GUARD(smki_file_read(path, 4096, &buf, &len));
    size_t n = 0;
    while (n < len && buf[n] != '\n' && buf[n] != '\r') n++;
    int rc = 0;
    ENSURE_GOTO(n > 0, SMKI_E_INPUT, out, "secret file %s is empty", path);
    ENSURE_GOTO(n < cap, SMKI_E_INPUT, out, "secret in %s is longer than %zu characters", path, cap - 1);
    memcpy(out, buf, n);
    out[n] = '\0';
out:
    smki_wipe(buf, len);
    free(buf);
    return rc;
}

int smki_home_require(const char *home, int create)
{
    ENSURE(home && *home, SMKI_E_USAGE, "no home folder given (--home DIR or SMKI_HOME)");
    struct stat st;
    if (stat(home, &st) == 0) {
        ENSURE(S_ISDIR(st.st_mode), SMKI_E_USAGE, "the home %s is not a folder: check --home or SMKI_HOME", home);
        return 0;
    }
    ENSURE(errno == ENOENT, SMKI_E_IO, "cannot reach the home %s: %s", home, strerror(errno));
    if (create) return smki_mkdirs(home, 0700);
    return SMKI_FAIL(SMKI_E_NOTFOUND,
                     "the home %s does not exist: check --home or SMKI_HOME (a mistyped home is never created); "
                     "a new home is made by 'smki hsm init', 'smki ca init' or 'smki device create', or by mkdir",
                     home);
}
