/*
 * file.c — reading a whole file: opened without blocking (a FIFO must not hang us),
 * checked to be a regular file, sized with fstat, read in one loop.
 */
#include "file.h"

#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *kind_of(mode_t m) {
    if (S_ISDIR(m)) return "a directory";
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISCHR(m) || S_ISBLK(m)) return "a device";
    if (S_ISSOCK(m)) return "a socket";
    return "not a regular file";
}

es_status es_file_read(const char *path, size_t max_bytes, char **data, size_t *len) {
    if (!path || !data || !len) return es_error(ES_ERR_INVALID_ARG, "read: NULL argument");
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return es_error(ES_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return es_error(ES_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return es_error(ES_ERR_IO, "%s: is %s, not a file", path, kind_of(sb.st_mode));
    }
    if (sb.st_size < 0 || (uint64_t)sb.st_size > max_bytes) {
        close(fd);
        return es_error(ES_ERR_FORMAT, "%s: %lld bytes is larger than the %zu allowed", path,
                        (long long)sb.st_size, max_bytes);
    }
    size_t size = (size_t)sb.st_size;
    char *buf = es_alloc_aligned(size + 1);
    if (!buf) {
        close(fd);
        return es_error(ES_ERR_NOMEM, "%s: out of memory for %zu bytes", path, size);
    }
    size_t n = 0;
    while (n < size) {
        ssize_t got = read(fd, buf + n, size - n);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            int e = got < 0 ? errno : 0;
            close(fd);
            free(buf);
            return e ? es_error(ES_ERR_IO, "%s: read error: %s", path, strerror(e))
                     : es_error(ES_ERR_IO, "%s: the file shrank while being read", path);
        }
        n += (size_t)got;
    }
    close(fd);
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return ES_OK;
}
