//! Isolation of a fuzz worker from the host: a mutated guest can make arbitrary system calls
//! (unlink, kill(-1, SIGKILL), fork bombs, writes to files).
//!
//! The worker (outside) unshares PID, mount, network, IPC and UTS namespaces (first a user
//! namespace when not root) and forks the namespace's init, which forks the case runner. The
//! runner makes all mounts private, chroots into an empty directory, redirects stdio to
//! /dev/null, moves its report pipe to a high fd, sets small RLIMIT_NPROC/FSIZE/CORE/DATA
//! limits and, as root, becomes `nobody`. Whatever the guest forks lives in the namespace:
//! the runner kills it after every case, and when init dies (the worker was killed) the
//! kernel kills everything in it.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Fd number the report pipe is moved to (guests use small fds).
const PIPE_FD: i32 = 1000;

/// A fresh empty directory to chroot into.
pub fn make_root() -> Result<PathBuf, String> {
    let tmpl = std::env::temp_dir().join("vmfuzz-root-XXXXXX");
    let mut t = tmpl.as_os_str().as_bytes().to_vec();
    t.push(0);
    // SAFETY: mkdtemp rewrites the NUL-terminated template in place.
    let p = unsafe { libc::mkdtemp(t.as_mut_ptr() as *mut libc::c_char) };
    if p.is_null() {
        return Err(format!("mkdtemp: {}", std::io::Error::last_os_error()));
    }
    t.pop();
    Ok(PathBuf::from(std::ffi::OsStr::from_bytes(&t)))
}

/// Removes a worker's chroot directory (and anything a guest managed to write there).
pub fn remove_root(root: &Path) {
    let _ = std::fs::remove_dir_all(root);
}

/// "exited with 3", "killed by signal 11 (SIGSEGV)".
pub fn describe_exit(status: i32) -> String {
    if libc::WIFSIGNALED(status) {
        signal_name(libc::WTERMSIG(status))
    } else {
        let c = libc::WEXITSTATUS(status);
        if c >= 128 {
            // The worker relays its runner's death by signal as 128 + signal.
            signal_name(c - 128)
        } else {
            format!("exited with {c}")
        }
    }
}

fn signal_name(s: i32) -> String {
    // SAFETY: strsignal returns a static or thread-local string for any number.
    let name = unsafe { std::ffi::CStr::from_ptr(libc::strsignal(s)) };
    format!("killed by signal {s} ({})", name.to_string_lossy())
}

fn check(what: &str, r: i32) -> Result<(), String> {
    if r < 0 {
        Err(format!("{what}: {}", std::io::Error::last_os_error()))
    } else {
        Ok(())
    }
}

fn write_file(path: &str, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{path}: {e}"))
}

/// Waits for `pid` and returns its status, retrying on EINTR.
fn wait(pid: libc::pid_t) -> i32 {
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return status;
        }
        if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return 1 << 8;
        }
    }
}

/// Relays a status as an exit code: the code, or 128 + signal.
fn relay(status: i32) -> i32 {
    if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        libc::WEXITSTATUS(status)
    }
}

/// In a freshly forked worker: isolates, then runs `body(report_fd)` in the case runner and
/// returns the exit code to leave the worker with (128 + signal if the runner died by one).
pub fn enter(root: &Path, pipe: i32, body: impl FnOnce(i32) -> i32) -> i32 {
    match isolate_and_run(root, pipe, body) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vmfuzz: worker cannot isolate itself: {e}");
            // Distinct from a crash: the parent sees an early exit without reports.
            2
        }
    }
}

fn isolate_and_run(root: &Path, pipe: i32, body: impl FnOnce(i32) -> i32) -> Result<i32, String> {
    // SAFETY: plain system calls on this process; no memory is shared with anything.
    unsafe {
        let uid = libc::geteuid();
        let gid = libc::getegid();
        let as_root = uid == 0;
        if !as_root {
            check("unshare(CLONE_NEWUSER)", libc::unshare(libc::CLONE_NEWUSER))?;
            write_file("/proc/self/setgroups", "deny")?;
            write_file("/proc/self/uid_map", &format!("0 {uid} 1"))?;
            write_file("/proc/self/gid_map", &format!("0 {gid} 1"))?;
        }
        check(
            "unshare(namespaces)",
            libc::unshare(
                libc::CLONE_NEWPID
                    | libc::CLONE_NEWNS
                    | libc::CLONE_NEWNET
                    | libc::CLONE_NEWIPC
                    | libc::CLONE_NEWUTS,
            ),
        )?;
        let init = libc::fork();
        check("fork (namespace init)", init)?;
        if init > 0 {
            // The worker: wait for the namespace's init and relay how it ended.
            return Ok(relay(wait(init)));
        }
        // The namespace's init (pid 1): dies with the worker, which takes everything in the
        // namespace with it.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        let runner = libc::fork();
        if runner < 0 {
            libc::_exit(1);
        }
        if runner > 0 {
            // Reap everything until the runner ends (orphans of the guests come here).
            let code = loop {
                let mut status = 0;
                let r = libc::waitpid(-1, &mut status, 0);
                if r == runner {
                    break relay(status);
                }
                if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                    break 1;
                }
            };
            libc::_exit(code);
        }
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        let code = match confine(root, pipe, as_root) {
            Ok(fd) => body(fd),
            Err(e) => {
                eprintln!("vmfuzz: worker cannot isolate itself: {e}");
                2
            }
        };
        libc::_exit(code);
    }
}

/// The case runner's own confinement; returns the report fd.
fn confine(root: &Path, pipe: i32, as_root: bool) -> Result<i32, String> {
    let root_c = CString::new(root.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: plain system calls on this process with valid NUL-terminated strings.
    unsafe {
        check(
            "mount(/, MS_REC|MS_PRIVATE)",
            libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ),
        )?;
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        check("open /dev/null", null)?;
        for fd in 0..3 {
            check("dup2 /dev/null", libc::dup2(null, fd))?;
        }
        if null > 2 {
            libc::close(null);
        }
        let fd = libc::fcntl(pipe, libc::F_DUPFD_CLOEXEC, PIPE_FD);
        check("move the report pipe", fd)?;
        libc::close(pipe);
        check("chroot", libc::chroot(root_c.as_ptr()))?;
        check("chdir /", libc::chdir(c"/".as_ptr()))?;
        let limit = |res, n: u64| {
            let l = libc::rlimit {
                rlim_cur: n,
                rlim_max: n,
            };
            libc::setrlimit(res, &l)
        };
        check("RLIMIT_NPROC", limit(libc::RLIMIT_NPROC, 256))?;
        check("RLIMIT_FSIZE", limit(libc::RLIMIT_FSIZE, 1 << 30))?;
        check("RLIMIT_CORE", limit(libc::RLIMIT_CORE, 0))?;
        // Private writable memory (the guest's touched pages, the JIT's heap): a memory
        // bomb fails its allocations instead of taking the machine.
        check("RLIMIT_DATA", limit(libc::RLIMIT_DATA, 4 << 30))?;
        if as_root {
            // Unprivileged from here: NPROC is enforced, the empty root is not writable.
            check("setgroups", libc::setgroups(0, std::ptr::null()))?;
            check("setgid nobody", libc::setgid(65534))?;
            check("setuid nobody", libc::setuid(65534))?;
        }
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        libc::prctl(libc::PR_SET_DUMPABLE, 0);
        Ok(fd)
    }
}

/// Kills whatever the last case's guest forked (everything in the namespace but the runner
/// and init) and reaps the runner's own children.
pub fn kill_strays() {
    // SAFETY: signals only processes of our own PID namespace; reaps our own children.
    unsafe {
        if libc::getpid() > 2 {
            // Not in a namespace (in-process use): nothing of ours to kill broadly.
            return;
        }
        libc::kill(-1, libc::SIGKILL);
        let mut status = 0;
        while libc::waitpid(-1, &mut status, libc::WNOHANG) > 0 {}
    }
}
