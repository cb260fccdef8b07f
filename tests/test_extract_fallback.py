"""The command line's pipe: a size Linux refuses (past pipe-max-size or pipe-user-pages-soft for a
non-root user) leaves the default pipe, and ffmpeg still runs through it."""
import fcntl
import os

from extract import fallback


def test_a_refused_pipe_size_keeps_the_default():
    """As a non-root user (nobody), a size past /proc/sys/fs/pipe-max-size is refused by the kernel
    (EPERM): grow_pipe must carry on with the default size, not fail the video."""
    limit = int(open("/proc/sys/fs/pipe-max-size").read())
    pid = os.fork()
    if pid == 0:                                  # the child: no exception may escape it
        code = 1
        try:
            if os.getuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            fallback.PIPE_SIZE = 4 * limit
            r, w = os.pipe()
            before = fcntl.fcntl(w, fcntl.F_GETPIPE_SZ)
            fallback.grow_pipe(w)
            code = 0 if fcntl.fcntl(w, fcntl.F_GETPIPE_SZ) == before else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_the_asked_size_is_granted_where_allowed():
    r, w = os.pipe()
    try:
        fallback.grow_pipe(w)
        limit = int(open("/proc/sys/fs/pipe-max-size").read())
        assert fcntl.fcntl(w, fcntl.F_GETPIPE_SZ) >= min(fallback.PIPE_SIZE, limit)
    finally:
        os.close(r)
        os.close(w)
    fd = os.open(os.devnull, os.O_RDONLY)
    try:
        fallback.grow_pipe(fd)                    # not a pipe at all: ignored too
    finally:
        os.close(fd)
