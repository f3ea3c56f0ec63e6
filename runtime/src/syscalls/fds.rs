//! The guest's descriptor space and the runtime's hidden descriptors.
//!
//! Guest descriptors are host descriptors, but the guest only ever sees `[0, hidden_base)`:
//! the runtime's own descriptors (the mapped program file, the vfork gate, ...) are moved
//! at or above `hidden_base` with [`hide_runtime_fd`], close-on-exec. The guest's
//! RLIMIT_NOFILE is emulated (its hard limit is `hidden_base`), so the kernel's own rules
//! for descriptors beyond the limit give the answers for runtime descriptors: every fd
//! argument at or above `hidden_base` is EBADF ([`FD_ARGS`], checked by the dispatcher
//! before any handler runs), a new descriptor the host hands out at or above the guest's
//! soft limit is closed again with EMFILE, dup3/F_DUPFD beyond the limit are EBADF/EINVAL.

use std::os::fd::RawFd;
use std::sync::OnceLock;

use super::SysResult;
use crate::process::Process;

/// Descriptors kept for the runtime above the guest's space.
const RESERVED: u64 = 64;
/// Highest host descriptor the layout uses (keeps the kernel's fd table small when the
/// hard limit is huge).
const TOP_CAP: u64 = 1 << 16;
/// RLIMIT_NOFILE.
pub const RLIMIT_NOFILE: u32 = 7;

/// How the host descriptor space is split.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// First runtime descriptor; also the guest's RLIMIT_NOFILE hard limit.
    pub hidden_base: u64,
    /// The guest's initial RLIMIT_NOFILE soft limit.
    pub guest_soft: u64,
}

fn host_nofile() -> [u64; 2] {
    let mut r = [0u64; 2];
    // SAFETY: r is a host struct rlimit.
    unsafe {
        libc::syscall(
            libc::SYS_prlimit64,
            0,
            RLIMIT_NOFILE as libc::c_long,
            std::ptr::null::<u64>(),
            r.as_mut_ptr(),
        )
    };
    r
}

fn set_host_soft(soft: u64) {
    let r = [soft, host_nofile()[1]];
    // SAFETY: r is a host struct rlimit.
    unsafe {
        libc::syscall(
            libc::SYS_prlimit64,
            0,
            RLIMIT_NOFILE as libc::c_long,
            r.as_ptr(),
            std::ptr::null_mut::<u64>(),
        )
    };
}

/// The layout, computed once: the host soft limit is raised to the top of the layout so
/// the runtime can place its descriptors there.
pub fn layout() -> Layout {
    static L: OnceLock<Layout> = OnceLock::new();
    *L.get_or_init(|| {
        let [soft, hard] = host_nofile();
        let top = hard.clamp(2 * RESERVED, TOP_CAP);
        let hidden_base = top - RESERVED;
        set_host_soft(top);
        Layout {
            hidden_base,
            guest_soft: soft.min(hidden_base),
        }
    })
}

/// The guest's current RLIMIT_NOFILE `[soft, hard]`.
pub fn guest_nofile(p: &Process) -> [u64; 2] {
    let l = layout();
    p.sys.rlimits[RLIMIT_NOFILE as usize].unwrap_or([l.guest_soft, l.hidden_base])
}

/// Moves a descriptor the runtime keeps open out of the guest's space (close-on-exec);
/// returns its new number (the old one if the move failed, e.g. when no slot is free).
pub fn hide_runtime_fd(fd: RawFd) -> RawFd {
    let base = layout().hidden_base;
    if fd as u64 >= base {
        return fd;
    }
    // SAFETY: plain descriptor operations on a descriptor the caller owns.
    unsafe {
        let n = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, base as libc::c_int);
        if n < 0 {
            return fd;
        }
        libc::close(fd);
        n
    }
}

/// Before execve: the host's soft limit becomes the guest's, so that the next vmrun
/// reads the guest's view back. [`after_failed_exec`] undoes it.
pub fn before_exec(p: &Process) {
    set_host_soft(guest_nofile(p)[0]);
}

/// An execve failed: the runtime needs its full descriptor space back.
pub fn after_failed_exec() {
    let l = layout();
    set_host_soft(l.hidden_base + RESERVED);
}

/// How a syscall argument names a descriptor.
#[derive(Clone, Copy)]
enum Arg {
    /// A descriptor at this position.
    Fd(usize),
    /// A directory descriptor at this position, used only when the path argument at the
    /// second position is relative (AT_FDCWD allowed).
    Dir(usize, usize),
    /// mmap's descriptor: only for file mappings.
    MmapFd,
}

use Arg::{Dir, Fd, MmapFd};

/// Every implemented syscall taking descriptors: number, argument positions.
const FD_ARGS: &[(u64, &[Arg])] = &[
    (23, &[Fd(0)]),                 // dup
    (24, &[Fd(0)]),                 // dup3 (newfd: see `before`)
    (25, &[Fd(0)]),                 // fcntl
    (29, &[Fd(0)]),                 // ioctl
    (32, &[Fd(0)]),                 // flock
    (33, &[Dir(0, 1)]),             // mknodat
    (34, &[Dir(0, 1)]),             // mkdirat
    (35, &[Dir(0, 1)]),             // unlinkat
    (36, &[Dir(1, 2)]),             // symlinkat
    (37, &[Dir(0, 1), Dir(2, 3)]),  // linkat
    (38, &[Dir(0, 1), Dir(2, 3)]),  // renameat
    (44, &[Fd(0)]),                 // fstatfs
    (46, &[Fd(0)]),                 // ftruncate
    (47, &[Fd(0)]),                 // fallocate
    (48, &[Dir(0, 1)]),             // faccessat
    (50, &[Fd(0)]),                 // fchdir
    (52, &[Fd(0)]),                 // fchmod
    (53, &[Dir(0, 1)]),             // fchmodat
    (54, &[Dir(0, 1)]),             // fchownat
    (55, &[Fd(0)]),                 // fchown
    (56, &[Dir(0, 1)]),             // openat
    (57, &[Fd(0)]),                 // close
    (61, &[Fd(0)]),                 // getdents64
    (62, &[Fd(0)]),                 // lseek
    (63, &[Fd(0)]),                 // read
    (64, &[Fd(0)]),                 // write
    (65, &[Fd(0)]),                 // readv
    (66, &[Fd(0)]),                 // writev
    (67, &[Fd(0)]),                 // pread64
    (68, &[Fd(0)]),                 // pwrite64
    (69, &[Fd(0)]),                 // preadv
    (70, &[Fd(0)]),                 // pwritev
    (71, &[Fd(0), Fd(1)]),          // sendfile
    (78, &[Dir(0, 1)]),             // readlinkat
    (79, &[Dir(0, 1)]),             // newfstatat
    (80, &[Fd(0)]),                 // fstat
    (82, &[Fd(0)]),                 // fsync
    (83, &[Fd(0)]),                 // fdatasync
    (88, &[Dir(0, 1)]),             // utimensat
    (222, &[MmapFd]),               // mmap
    (223, &[Fd(0)]),                // fadvise64
    (267, &[Fd(0)]),                // syncfs
    (276, &[Dir(0, 1), Dir(2, 3)]), // renameat2
    (281, &[Dir(0, 1)]),            // execveat
    (285, &[Fd(0), Fd(2)]),         // copy_file_range
    (286, &[Fd(0)]),                // preadv2
    (287, &[Fd(0)]),                // pwritev2
    (291, &[Dir(0, 1)]),            // statx
    (439, &[Dir(0, 1)]),            // faccessat2
    (452, &[Dir(0, 1)]),            // fchmodat2
];

/// Syscalls whose result is a new descriptor.
const NEW_FD: &[u64] = &[19, 23, 24, 25, 56, 279];

const AT_FDCWD: i32 = -100;
const MAP_ANONYMOUS: u64 = 0x20;
const F_DUPFD: u64 = 0;
const F_DUPFD_CLOEXEC: u64 = 1030;

/// Whether the guest path at `addr` is absolute (then the kernel ignores the dirfd).
fn absolute(p: &mut Process, addr: u64) -> bool {
    p.mem.slice(addr, 1).is_ok_and(|s| s[0] == b'/')
}

/// Checks a syscall's descriptor arguments before its handler runs and applies the
/// descriptor-space rules that change arguments (close_range, pselect6). `Some` is the
/// call's result when it must not reach the handler.
pub fn before(p: &mut Process, nr: u64, a: &mut [u64; 6]) -> Option<SysResult> {
    let base = layout().hidden_base;
    let hidden = |v: u64| (v as i32) >= 0 && (v as i32) as u64 >= base;
    if let Some((_, args)) = FD_ARGS.iter().find(|e| e.0 == nr) {
        for arg in *args {
            let bad = match *arg {
                Fd(i) => hidden(a[i]),
                Dir(i, path) => a[i] as i32 != AT_FDCWD && hidden(a[i]) && !absolute(p, a[path]),
                MmapFd => a[3] & MAP_ANONYMOUS == 0 && hidden(a[4]),
            };
            if bad {
                return Some(SysResult::err(libc::EBADF));
            }
        }
    }
    let soft = guest_nofile(p)[0];
    match nr {
        // dup3 onto a descriptor beyond the limit: EBADF (the kernel's check).
        24 if a[1] as u32 as u64 >= soft => Some(SysResult::err(libc::EBADF)),
        25 if (a[1] == F_DUPFD || a[1] == F_DUPFD_CLOEXEC) && a[2] as u32 as u64 >= soft => {
            Some(SysResult::err(libc::EINVAL))
        }
        // close_range never reaches the runtime's descriptors.
        436 => {
            let (first, last) = (a[0] as u32 as u64, a[1] as u32 as u64);
            if first <= last && last >= base {
                if first >= base {
                    let valid = a[2] as u32 & !(2 | 4) == 0;
                    return Some(SysResult::Ret(if valid { 0 } else { -libc::EINVAL as i64 }));
                }
                a[1] = base - 1;
            }
            None
        }
        // pselect6: bits of runtime descriptors are not looked at.
        72 if (a[0] as i32) as i64 > base as i64 => {
            a[0] = base;
            None
        }
        _ => None,
    }
}

/// After a handler: a new descriptor beyond the guest's soft limit is closed again
/// (EMFILE, as when the limit is reached), and the special-descriptor table follows
/// dup/close.
pub fn after(p: &mut Process, nr: u64, a: &[u64; 6], r: SysResult) -> SysResult {
    let soft = guest_nofile(p)[0];
    let close = |fd: i64| {
        // SAFETY: closing a descriptor this call just created for the guest.
        unsafe { libc::close(fd as i32) };
    };
    let SysResult::Ret(v) = r else { return r };
    let new_fd = NEW_FD.contains(&nr) && (nr != 25 || a[1] == F_DUPFD || a[1] == F_DUPFD_CLOEXEC);
    if new_fd && v >= 0 && v as u64 >= soft {
        close(v);
        p.sys.special_fds.remove(&(v as i32));
        return SysResult::err(libc::EMFILE);
    }
    if nr == 59 && v == 0 {
        // pipe2 wrote two descriptors into guest memory.
        if let Ok(b) = p.mem.slice(a[0], 8) {
            let fds = [
                i32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            ];
            if fds.iter().any(|f| *f as u64 >= soft) {
                fds.iter().for_each(|f| close(*f as i64));
                return SysResult::err(libc::EMFILE);
            }
        }
    }
    if v >= 0 {
        track_special(p, nr, a, v);
    }
    r
}

/// Keeps the special-descriptor table in step with dup, dup3, F_DUPFD and close.
fn track_special(p: &mut Process, nr: u64, a: &[u64; 6], v: i64) {
    let t = &mut p.sys.special_fds;
    match nr {
        23..=25 if nr != 25 || a[1] == F_DUPFD || a[1] == F_DUPFD_CLOEXEC => {
            match t.get(&(a[0] as i32)).copied() {
                Some(k) => {
                    t.insert(v as i32, k);
                }
                None => {
                    t.remove(&(v as i32));
                }
            }
        }
        57 => {
            t.remove(&(a[0] as i32));
        }
        436 if a[2] & 4 == 0 => {
            let (first, last) = (a[0] as u32 as i64, a[1] as u32 as i64);
            t.retain(|fd, _| !(first..=last).contains(&(*fd as i64)));
        }
        _ => {}
    }
}

/// Whether a ppoll entry names a runtime descriptor (the kernel would answer POLLNVAL).
pub fn poll_hidden(fd: i32) -> bool {
    fd >= 0 && fd as u64 >= layout().hidden_base
}

/// Whether a descriptor number is a runtime descriptor (for /proc/self/fd listings).
pub fn is_hidden(fd: u64) -> bool {
    fd >= layout().hidden_base
}

#[cfg(test)]
mod tests {
    use super::super::guest::testing::*;
    use super::*;

    #[test]
    fn runtime_fds_are_out_of_reach() {
        let mut p = process();
        // SAFETY: opening /dev/null for the test.
        let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) };
        assert!(fd >= 0);
        let h = hide_runtime_fd(fd) as u64;
        assert!(h >= layout().hidden_base, "{h}");
        // Every use by the guest is EBADF; the runtime's descriptor survives.
        assert_eq!(call(&mut p, 57, &[h]), err(libc::EBADF));
        assert_eq!(call(&mut p, 63, &[h, SCRATCH, 1]), err(libc::EBADF));
        assert_eq!(call(&mut p, 23, &[h]), err(libc::EBADF));
        assert_eq!(call(&mut p, 80, &[h, SCRATCH]), err(libc::EBADF));
        put_str(&mut p, SCRATCH, b"x");
        assert_eq!(call(&mut p, 56, &[h, SCRATCH, 0, 0]), err(libc::EBADF));
        // An absolute path ignores the dirfd, as in Linux.
        put_str(&mut p, SCRATCH, b"/dev/null");
        let SysResult::Ret(g) = call(&mut p, 56, &[h, SCRATCH, 0, 0]) else {
            panic!()
        };
        assert!(g >= 0 && (g as u64) < guest_nofile(&p)[0]);
        // dup3 / F_DUPFD onto or beyond the limit.
        let soft = guest_nofile(&p)[0];
        assert_eq!(call(&mut p, 24, &[g as u64, h, 0]), err(libc::EBADF));
        assert_eq!(call(&mut p, 24, &[g as u64, soft, 0]), err(libc::EBADF));
        assert_eq!(call(&mut p, 25, &[g as u64, 0, soft]), err(libc::EINVAL));
        // close_range over everything leaves the runtime's descriptor open.
        assert_eq!(
            call(&mut p, 436, &[g as u64, u32::MAX as u64, 0]),
            SysResult::Ret(0)
        );
        assert_eq!(
            call(&mut p, 436, &[h, u32::MAX as u64, 0]),
            SysResult::Ret(0)
        );
        // SAFETY: querying our own descriptor.
        assert!(unsafe { libc::fcntl(h as i32, libc::F_GETFD) } >= 0);
        assert_eq!(call(&mut p, 57, &[g as u64]), err(libc::EBADF));
        // SAFETY: closing the test's descriptor.
        unsafe { libc::close(h as i32) };
    }

    #[test]
    fn new_fds_beyond_the_soft_limit_are_emfile() {
        let mut p = process();
        put_str(&mut p, SCRATCH, b"/dev/null");
        let SysResult::Ret(g) = call(&mut p, 56, &[AT_FDCWD as u64, SCRATCH, 0, 0]) else {
            panic!()
        };
        // setrlimit(RLIMIT_NOFILE, {soft, hard}) through a guest struct rlimit.
        let setrlimit = |p: &mut Process, soft: u64, hard: u64| {
            let lim: Vec<u8> = [soft, hard].iter().flat_map(|w| w.to_le_bytes()).collect();
            p.mem
                .slice_mut(SCRATCH + 0x100, 16)
                .unwrap()
                .copy_from_slice(&lim);
            call(p, 164, &[7, SCRATCH + 0x100])
        };
        // A soft limit at the descriptor just opened: the next open is EMFILE.
        assert_eq!(
            setrlimit(&mut p, g as u64 + 1, layout().hidden_base),
            SysResult::Ret(0)
        );
        assert_eq!(
            call(&mut p, 56, &[AT_FDCWD as u64, SCRATCH, 0, 0]),
            err(libc::EMFILE)
        );
        assert_eq!(call(&mut p, 23, &[g as u64]), err(libc::EMFILE));
        // The hard limit cannot be raised past the runtime's descriptors.
        assert_eq!(
            setrlimit(&mut p, 4, layout().hidden_base + 1),
            err(libc::EPERM)
        );
        assert_eq!(call(&mut p, 57, &[g as u64]), SysResult::Ret(0));
    }
}
