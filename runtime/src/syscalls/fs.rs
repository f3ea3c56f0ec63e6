//! Files, directories and descriptors: openat, close, lseek, the stat family, getdents64,
//! readlinkat, access checks, fcntl, dup, directory-entry operations, permissions,
//! timestamps, the working directory, umask, sync, statfs and close_range.
//!
//! Guest descriptors are host descriptors (passed through, as qemu-user does). Paths go
//! through [`Process::host_path`] (the `-L` sysroot) and open flags are translated between
//! the asm-generic (AArch64) and x86-64 encodings.

use libc::{c_long, c_void};

use super::guest::{
    fail, host, host_cpath, int, is_proc_self_exe, opt_path_arg, opt_ptr, out_buf, path_arg,
    read_bytes, read_path, sys, write_bytes, Aligned, Sys, PATH_MAX,
};
use super::{SysResult, Syscall};
use crate::process::Process;

/// This family's syscalls.
pub const TABLE: &[Syscall] = &[
    sys!(17, "getcwd", getcwd),
    sys!(23, "dup", dup),
    sys!(24, "dup3", dup3),
    sys!(25, "fcntl", fcntl),
    sys!(32, "flock", flock),
    sys!(33, "mknodat", mknodat),
    sys!(34, "mkdirat", mkdirat),
    sys!(35, "unlinkat", unlinkat),
    sys!(36, "symlinkat", symlinkat),
    sys!(37, "linkat", linkat),
    sys!(38, "renameat", renameat),
    sys!(43, "statfs", statfs),
    sys!(44, "fstatfs", fstatfs),
    sys!(45, "truncate", truncate),
    sys!(46, "ftruncate", ftruncate),
    sys!(47, "fallocate", fallocate),
    sys!(48, "faccessat", faccessat),
    sys!(49, "chdir", chdir),
    sys!(50, "fchdir", fchdir),
    sys!(52, "fchmod", fchmod),
    sys!(53, "fchmodat", fchmodat),
    sys!(54, "fchownat", fchownat),
    sys!(55, "fchown", fchown),
    sys!(56, "openat", openat),
    sys!(57, "close", close),
    sys!(61, "getdents64", getdents64),
    sys!(62, "lseek", lseek),
    sys!(78, "readlinkat", readlinkat),
    sys!(79, "newfstatat", newfstatat),
    sys!(80, "fstat", fstat),
    sys!(81, "sync", sync),
    sys!(82, "fsync", fsync),
    sys!(83, "fdatasync", fdatasync),
    sys!(88, "utimensat", utimensat),
    sys!(166, "umask", umask),
    sys!(223, "fadvise64", fadvise64),
    sys!(267, "syncfs", syncfs),
    sys!(276, "renameat2", renameat2),
    sys!(291, "statx", statx),
    sys!(439, "faccessat2", faccessat2),
    sys!(436, "close_range", close_range),
    sys!(452, "fchmodat2", fchmodat2),
];

// ---------------------------------------------------------------------------------------
// Open flags.

/// Open-flag bits whose values differ: (name, AArch64 asm-generic value, x86-64 value).
/// Every other O_* bit has the same value on both.
pub const OPEN_FLAG_DIFFS: &[(&str, u32, u32)] = &[
    ("O_DIRECTORY", 0o040000, 0o200000),
    ("O_NOFOLLOW", 0o100000, 0o400000),
    ("O_DIRECT", 0o200000, 0o040000),
    ("O_LARGEFILE", 0o400000, 0o100000),
];

const GUEST_O_LARGEFILE: u32 = 0o400000;

fn diff_mask(guest: bool) -> u32 {
    OPEN_FLAG_DIFFS
        .iter()
        .fold(0, |m, f| m | if guest { f.1 } else { f.2 })
}

/// Guest (AArch64) open flags to host (x86-64) flags. O_LARGEFILE is dropped: it is
/// implied on a 64-bit host.
pub fn open_flags_to_host(g: u32) -> i32 {
    let mut h = g & !diff_mask(true);
    for &(_, gb, hb) in OPEN_FLAG_DIFFS {
        if g & gb != 0 && gb != GUEST_O_LARGEFILE {
            h |= hb;
        }
    }
    h as i32
}

/// Host (x86-64) open flags to guest (AArch64) flags, e.g. for F_GETFL.
pub fn open_flags_to_guest(h: i32) -> u32 {
    let h = h as u32;
    let mut g = h & !diff_mask(false);
    for &(_, gb, hb) in OPEN_FLAG_DIFFS {
        if h & hb != 0 {
            g |= gb;
        }
    }
    g
}

// ---------------------------------------------------------------------------------------
// struct stat / struct statfs conversion.

/// Size of the asm-generic `struct stat` used by AArch64.
pub const GUEST_STAT_SIZE: usize = 128;

/// Converts a host (x86-64) `struct stat` to the AArch64 (asm-generic) layout:
/// dev u64 @0, ino u64 @8, mode u32 @16, nlink u32 @20, uid u32 @24, gid u32 @28,
/// rdev u64 @32, pad @40, size i64 @48, blksize i32 @56, pad @60, blocks i64 @64,
/// atime/nsec @72/@80, mtime/nsec @88/@96, ctime/nsec @104/@112, 2 x u32 unused @120.
/// Fails with EOVERFLOW if the link count does not fit (as the kernel's cp_new_stat).
pub fn stat_to_guest(st: &libc::stat) -> Result<[u8; GUEST_STAT_SIZE], i32> {
    let nlink = u32::try_from(st.st_nlink).map_err(|_| libc::EOVERFLOW)?;
    let mut b = [0u8; GUEST_STAT_SIZE];
    let mut put = |off: usize, bytes: &[u8]| b[off..off + bytes.len()].copy_from_slice(bytes);
    put(0, &st.st_dev.to_le_bytes());
    put(8, &st.st_ino.to_le_bytes());
    put(16, &st.st_mode.to_le_bytes());
    put(20, &nlink.to_le_bytes());
    put(24, &st.st_uid.to_le_bytes());
    put(28, &st.st_gid.to_le_bytes());
    put(32, &st.st_rdev.to_le_bytes());
    put(48, &st.st_size.to_le_bytes());
    put(56, &(st.st_blksize as i32).to_le_bytes());
    put(64, &st.st_blocks.to_le_bytes());
    put(72, &st.st_atime.to_le_bytes());
    put(80, &st.st_atime_nsec.to_le_bytes());
    put(88, &st.st_mtime.to_le_bytes());
    put(96, &st.st_mtime_nsec.to_le_bytes());
    put(104, &st.st_ctime.to_le_bytes());
    put(112, &st.st_ctime_nsec.to_le_bytes());
    Ok(b)
}

/// Size of the asm-generic 64-bit `struct statfs`.
pub const GUEST_STATFS_SIZE: usize = 120;

/// The x86-64 kernel's `struct statfs` (arch/x86/include/uapi/asm/statfs.h, which uses the
/// asm-generic definition with `__statfs_word` = `long`), as the raw syscall writes it.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct HostStatfs {
    /// Type of file system.
    pub f_type: i64,
    /// Optimal transfer block size.
    pub f_bsize: i64,
    /// Total data blocks.
    pub f_blocks: u64,
    /// Free blocks.
    pub f_bfree: u64,
    /// Free blocks for unprivileged users.
    pub f_bavail: u64,
    /// Total inodes.
    pub f_files: u64,
    /// Free inodes.
    pub f_ffree: u64,
    /// File system id.
    pub f_fsid: [i32; 2],
    /// Maximum name length.
    pub f_namelen: i64,
    /// Fragment size.
    pub f_frsize: i64,
    /// Mount flags.
    pub f_flags: i64,
    /// Spare.
    pub f_spare: [i64; 4],
}

/// Converts the host `struct statfs` to the AArch64 layout: f_type, f_bsize, f_blocks,
/// f_bfree, f_bavail, f_files, f_ffree (8 bytes each), f_fsid (2 x i32), f_namelen,
/// f_frsize, f_flags, f_spare[4] (8 bytes each). (x86-64 happens to use the same
/// asm-generic definition, but the fields are copied one by one regardless.)
pub fn statfs_to_guest(s: &HostStatfs) -> [u8; GUEST_STATFS_SIZE] {
    let mut b = [0u8; GUEST_STATFS_SIZE];
    let words: [u64; 7] = [
        s.f_type as u64,
        s.f_bsize as u64,
        s.f_blocks,
        s.f_bfree,
        s.f_bavail,
        s.f_files,
        s.f_ffree,
    ];
    for (i, w) in words.iter().enumerate() {
        b[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
    }
    b[56..60].copy_from_slice(&s.f_fsid[0].to_le_bytes());
    b[60..64].copy_from_slice(&s.f_fsid[1].to_le_bytes());
    b[64..72].copy_from_slice(&s.f_namelen.to_le_bytes());
    b[72..80].copy_from_slice(&s.f_frsize.to_le_bytes());
    b[80..88].copy_from_slice(&s.f_flags.to_le_bytes());
    b
}

fn put_stat(p: &mut Process, addr: u64, st: &libc::stat) -> Sys {
    match stat_to_guest(st) {
        Ok(b) => {
            write_bytes(p, addr, &b)?;
            Ok(SysResult::Ret(0))
        }
        Err(e) => fail(e),
    }
}

fn zeroed_stat() -> libc::stat {
    // SAFETY: struct stat is plain old data; all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

// ---------------------------------------------------------------------------------------
// Handlers.

const AT_EMPTY_PATH: u64 = 0x1000;

fn openat(p: &mut Process, a: [u64; 6]) -> Sys {
    let g = read_path(p, a[1])?;
    let path = if is_proc_self_exe(&g) {
        std::ffi::CString::new(p.exe.as_os_str().as_encoded_bytes()).unwrap_or_default()
    } else {
        host_cpath(p, &g)
    };
    let flags = open_flags_to_host(a[2] as u32);
    super::procfs::open(p, int(a[0]) as i32, &path, flags, a[3] as u32)
}

fn close(_p: &mut Process, a: [u64; 6]) -> Sys {
    // SAFETY: closing a descriptor number has no memory effects.
    host(unsafe { libc::syscall(libc::SYS_close, int(a[0])) })
}

fn close_range(_p: &mut Process, a: [u64; 6]) -> Sys {
    // SAFETY: no pointers; CLOSE_RANGE_* flags are the same on both.
    host(unsafe {
        libc::syscall(
            libc::SYS_close_range,
            a[0] as u32 as c_long,
            a[1] as u32 as c_long,
            a[2] as u32 as c_long,
        )
    })
}

fn lseek(_p: &mut Process, a: [u64; 6]) -> Sys {
    // SAFETY: no pointers.
    host(unsafe { libc::syscall(libc::SYS_lseek, int(a[0]), a[1] as i64, int(a[2])) })
}

fn fstat(p: &mut Process, a: [u64; 6]) -> Sys {
    let mut st = zeroed_stat();
    // SAFETY: st is a host struct stat.
    let r = unsafe { libc::syscall(libc::SYS_fstat, int(a[0]), &mut st as *mut libc::stat) };
    if r < 0 {
        return host(r);
    }
    put_stat(p, a[1], &st)
}

fn newfstatat(p: &mut Process, a: [u64; 6]) -> Sys {
    let path = if a[1] == 0 && a[3] & AT_EMPTY_PATH != 0 {
        None
    } else {
        Some(path_arg(p, a[1])?)
    };
    let mut st = zeroed_stat();
    // SAFETY: path is NULL or a valid C string; st is a host struct stat.
    let r = unsafe {
        libc::syscall(
            libc::SYS_newfstatat,
            int(a[0]),
            opt_ptr(&path),
            &mut st as *mut libc::stat,
            int(a[3]),
        )
    };
    if r < 0 {
        return host(r);
    }
    put_stat(p, a[2], &st)
}

fn statx(p: &mut Process, a: [u64; 6]) -> Sys {
    // struct statx has the same layout on every architecture: pass it through.
    let path = if a[1] == 0 {
        None
    } else {
        Some(path_arg(p, a[1])?)
    };
    let mut buf = Aligned::<256>::new();
    // SAFETY: path is NULL or a valid C string; buf holds a struct statx (256 bytes).
    let r = unsafe {
        libc::syscall(
            libc::SYS_statx,
            int(a[0]),
            opt_ptr(&path),
            int(a[2]),
            int(a[3]),
            buf.ptr(),
        )
    };
    if r < 0 {
        return host(r);
    }
    write_bytes(p, a[4], &buf.0)?;
    Ok(SysResult::Ret(0))
}

fn getdents64(p: &mut Process, a: [u64; 6]) -> Sys {
    // struct linux_dirent64 is the same on both: the kernel writes straight into guest memory.
    let (fd, count) = (int(a[0]), a[2] as u32 as u64);
    let buf = out_buf(p, a[1], count).map_err(|e| dir_first(fd, e))?;
    loop {
        // SAFETY: buf is a checked, writable guest slice of buf.len() bytes.
        let r = unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()) };
        if r <= 0 {
            return host(r);
        }
        // Runtime descriptors are not listed in /proc/<pid>/fd; a batch of only those is
        // skipped rather than returned empty (which would mean the end).
        let n = super::procfs::filter_dents(fd as i32, buf, r as usize);
        if n > 0 {
            return Ok(SysResult::Ret(n as i64));
        }
    }
}

/// Linux looks at the descriptor (in any access mode) before the buffer in getdents64:
/// EBADF for a bad or O_PATH descriptor, ENOTDIR for one that is not a directory, then the buffer's error.
fn dir_first(fd: c_long, e: SysResult) -> SysResult {
    // SAFETY: no pointers.
    let fl = unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_GETFL) };
    if fl < 0 || fl as i32 & libc::O_PATH != 0 {
        return SysResult::err(libc::EBADF);
    }
    let mut st = zeroed_stat();
    // SAFETY: host struct stat.
    let r = unsafe { libc::syscall(libc::SYS_fstat, fd, &mut st as *mut libc::stat) };
    if r == 0 && st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return SysResult::err(libc::ENOTDIR);
    }
    e
}

fn readlinkat(p: &mut Process, a: [u64; 6]) -> Sys {
    let size = a[3] as i32;
    let g = read_path(p, a[1])?;
    if size <= 0 {
        return fail(libc::EINVAL);
    }
    let path = host_cpath(p, &g);
    let target = if is_proc_self_exe(&g) {
        p.exe.as_os_str().as_encoded_bytes().to_vec()
    } else if let Some(t) = super::procfs::readlink(p, int(a[0]) as i32, &path) {
        t?
    } else {
        let mut buf = vec![0u8; (size as usize).min(PATH_MAX)];
        // SAFETY: buf is a host buffer of buf.len() bytes; path a valid C string.
        let r = unsafe {
            libc::syscall(
                libc::SYS_readlinkat,
                int(a[0]),
                path.as_ptr(),
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        if r < 0 {
            return host(r);
        }
        buf.truncate(r as usize);
        buf
    };
    let n = target.len().min(size as usize);
    write_bytes(p, a[2], &target[..n])?;
    Ok(SysResult::Ret(n as i64))
}

fn faccessat(p: &mut Process, a: [u64; 6]) -> Sys {
    let path = path_arg(p, a[1])?;
    // SAFETY: valid C string.
    host(unsafe { libc::syscall(libc::SYS_faccessat, int(a[0]), path.as_ptr(), int(a[2])) })
}

fn faccessat2(p: &mut Process, a: [u64; 6]) -> Sys {
    let path = path_arg(p, a[1])?;
    // SAFETY: valid C string.
    host(unsafe {
        libc::syscall(
            libc::SYS_faccessat2,
            int(a[0]),
            path.as_ptr(),
            int(a[2]),
            int(a[3]),
        )
    })
}

const F_DUPFD: i32 = 0;
const F_GETFD: i32 = 1;
const F_SETFD: i32 = 2;
const F_GETFL: i32 = 3;
const F_SETFL: i32 = 4;
const F_GETLK: i32 = 5;
const F_SETLK: i32 = 6;
const F_SETLKW: i32 = 7;
const F_SETOWN: i32 = 8;
const F_GETOWN: i32 = 9;
const F_SETSIG: i32 = 10;
const F_GETSIG: i32 = 11;
const F_SETOWN_EX: i32 = 15;
const F_GETOWN_EX: i32 = 16;
const F_OFD_GETLK: i32 = 36;
const F_OFD_SETLK: i32 = 37;
const F_OFD_SETLKW: i32 = 38;
const F_SETLEASE: i32 = 1024;
const F_GETLEASE: i32 = 1025;
const F_NOTIFY: i32 = 1026;
const F_DUPFD_CLOEXEC: i32 = 1030;
const F_SETPIPE_SZ: i32 = 1031;
const F_GETPIPE_SZ: i32 = 1032;
const F_ADD_SEALS: i32 = 1033;
const F_GET_SEALS: i32 = 1034;

fn fcntl(p: &mut Process, a: [u64; 6]) -> Sys {
    let (fd, cmd) = (int(a[0]), a[1] as i32);
    // SAFETY (all calls below): scalar arguments, or pointers to host buffers of the size the
    // command uses.
    match cmd {
        F_GETFL => {
            let r = unsafe { libc::syscall(libc::SYS_fcntl, fd, F_GETFL) };
            if r < 0 {
                return host(r);
            }
            Ok(SysResult::Ret(open_flags_to_guest(r as i32) as i64))
        }
        F_SETFL => {
            let fl = open_flags_to_host(a[2] as u32);
            host(unsafe { libc::syscall(libc::SYS_fcntl, fd, F_SETFL, fl as c_long) })
        }
        F_DUPFD | F_DUPFD_CLOEXEC | F_GETFD | F_SETFD | F_SETOWN | F_GETOWN | F_SETSIG
        | F_GETSIG | F_SETLEASE | F_GETLEASE | F_NOTIFY | F_SETPIPE_SZ | F_GETPIPE_SZ
        | F_ADD_SEALS | F_GET_SEALS => {
            host(unsafe { libc::syscall(libc::SYS_fcntl, fd, cmd, int(a[2])) })
        }
        // struct flock: same 32-byte layout on both (asm-generic; no __ARCH_FLOCK_PAD on arm64).
        F_GETLK | F_SETLK | F_SETLKW | F_OFD_GETLK | F_OFD_SETLK | F_OFD_SETLKW => {
            let mut fl = Aligned::<32>::new();
            fl.0.copy_from_slice(&read_bytes(p, a[2], 32)?);
            let r = unsafe { libc::syscall(libc::SYS_fcntl, fd, cmd, fl.ptr()) };
            if r < 0 {
                return host(r);
            }
            if cmd == F_GETLK || cmd == F_OFD_GETLK {
                write_bytes(p, a[2], &fl.0)?;
            }
            Ok(SysResult::Ret(r as i64))
        }
        // struct f_owner_ex { int type; pid_t pid; }
        F_GETOWN_EX | F_SETOWN_EX => {
            let mut o = Aligned::<8>::new();
            if cmd == F_SETOWN_EX {
                o.0.copy_from_slice(&read_bytes(p, a[2], 8)?);
            }
            let r = unsafe { libc::syscall(libc::SYS_fcntl, fd, cmd, o.ptr()) };
            if r < 0 {
                return host(r);
            }
            if cmd == F_GETOWN_EX {
                write_bytes(p, a[2], &o.0)?;
            }
            Ok(SysResult::Ret(r as i64))
        }
        _ => {
            // Check the descriptor first so a bad fd still gives EBADF.
            let r = unsafe { libc::syscall(libc::SYS_fcntl, fd, F_GETFD) };
            if r < 0 {
                return host(r);
            }
            fail(libc::EINVAL)
        }
    }
}

fn flock(_p: &mut Process, a: [u64; 6]) -> Sys {
    // SAFETY: no pointers.
    host(unsafe { libc::syscall(libc::SYS_flock, int(a[0]), int(a[1])) })
}

fn dup(_p: &mut Process, a: [u64; 6]) -> Sys {
    // SAFETY: no pointers.
    host(unsafe { libc::syscall(libc::SYS_dup, int(a[0])) })
}

fn dup3(_p: &mut Process, a: [u64; 6]) -> Sys {
    // O_CLOEXEC has the same value on both; other bits are rejected by the host (EINVAL).
    // SAFETY: no pointers.
    host(unsafe {
        libc::syscall(
            libc::SYS_dup3,
            int(a[0]),
            int(a[1]),
            open_flags_to_host(a[2] as u32) as c_long,
        )
    })
}

fn mknodat(p: &mut Process, a: [u64; 6]) -> Sys {
    let path = path_arg(p, a[1])?;
    // SAFETY: valid C string.
    host(unsafe {
        libc::syscall(
            libc::SYS_mknodat,
            int(a[0]),
            path.as_ptr(),
            a[2] as u32 as c_long,
            a[3] as u32 as c_long,
        )
    })
}

fn mkdirat(p: &mut Process, a: [u64; 6]) -> Sys {
    let path = path_arg(p, a[1])?;
    // SAFETY: valid C string.
    host(unsafe {
        libc::syscall(
            libc::SYS_mkdirat,
            int(a[0]),
            path.as_ptr(),
            a[2] as u32 as c_long,
        )
    })
}

fn unlinkat(p: &mut Process, a: [u64; 6]) -> Sys {
    let path = path_arg(p, a[1])?;
    // SAFETY: valid C string.
    host(unsafe { libc::syscall(libc::SYS_unlinkat, int(a[0]), path.as_ptr(), int(a[2])) })
}

fn symlinkat(p: &mut Process, a: [u64; 6]) -> Sys {
    // The link's contents are stored verbatim (no sysroot mapping).
    let target = std::ffi::CString::new(read_path(p, a[0])?).unwrap_or_default();
    let link = path_arg(p, a[2])?;
    // SAFETY: valid C strings.
    host(unsafe {
        libc::syscall(
            libc::SYS_symlinkat,
            target.as_ptr(),
            int(a[1]),
            link.as_ptr(),
        )
    })
}

fn linkat(p: &mut Process, a: [u64; 6]) -> Sys {
    let old = path_arg(p, a[1])?;
    let new = path_arg(p, a[3])?;
    // SAFETY: valid C strings.
    host(unsafe {
        libc::syscall(
            libc::SYS_linkat,
            int(a[0]),
            old.as_ptr(),
            int(a[2]),
            new.as_ptr(),
            int(a[4]),
        )
    })
}

fn renameat(p: &mut Process, a: [u64; 6]) -> Sys {
    let old = path_arg(p, a[1])?;
    let new = path_arg(p, a[3])?;
    // SAFETY: valid C strings.
    host(unsafe {
        libc::syscall(
            libc::SYS_renameat,
            int(a[0]),
            old.as_ptr(),
            int(a[2]),
            new.as_ptr(),
        )
    })
}

fn renameat2(p: &mut Process, a: [u64; 6]) -> Sys {
    let old = path_arg(p, a[1])?;
    let new = path_arg(p, a[3])?;
    // SAFETY: valid C strings.
    host(unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            int(a[0]),
            old.as_ptr(),
            int(a[2]),
            new.as_ptr(),
            a[4] as u32 as c_long,
        )
    })
}

fn statfs(p: &mut Process, a: [u64; 6]) -> Sys {
    let path = path_arg(p, a[0])?;
    let mut s = HostStatfs::default();
    // SAFETY: valid C string and host struct.
    let r = unsafe { libc::syscall(libc::SYS_statfs, path.as_ptr(), &mut s as *mut HostStatfs) };
    if r < 0 {
        return host(r);
    }
    write_bytes(p, a[1], &statfs_to_guest(&s))?;
    Ok(SysResult::Ret(0))
}

fn fstatfs(p: &mut Process, a: [u64; 6]) -> Sys {
    let mut s = HostStatfs::default();
    // SAFETY: host struct.
    let r = unsafe { libc::syscall(libc::SYS_fstatfs, int(a[0]), &mut s as *mut HostStatfs) };
    if r < 0 {
        return host(r);
    }
    write_bytes(p, a[1], &statfs_to_guest(&s))?;
    Ok(SysResult::Ret(0))
}

fn truncate(p: &mut Process, a: [u64; 6]) -> Sys {
    let path = path_arg(p, a[0])?;
    // SAFETY: valid C string.
    host(unsafe { libc::syscall(libc::SYS_truncate, path.as_ptr(), a[1] as i64) })
}

fn ftruncate(_p: &mut Process, a: [u64; 6]) -> Sys {
    // SAFETY: no pointers.
    host(unsafe { libc::syscall(libc::SYS_ftruncate, int(a[0]), a[1] as i64) })
}

fn fallocate(_p: &mut Process, a: [u64; 6]) -> Sys {
    // SAFETY: no pointers.
    host(unsafe {
        libc::syscall(
            libc::SYS_fallocate,
            int(a[0]),
            int(a[1]),
            a[2] as i64,
            a[3] as i64,
        )
    })
}

fn fadvise64(_p: &mut Process, a: [u64; 6]) -> Sys {
    // SAFETY: no pointers.
    host(unsafe {
        libc::syscall(
            libc::SYS_fadvise64,
            int(a[0]),
            a[1] as i64,
            a[2] as i64,
            int(a[3]),
        )
    })
}

fn chdir(p: &mut Process, a: [u64; 6]) -> Sys {
    let path = path_arg(p, a[0])?;
    // SAFETY: valid C string.
    host(unsafe { libc::syscall(libc::SYS_chdir, path.as_ptr()) })
}

fn fchdir(_p: &mut Process, a: [u64; 6]) -> Sys {
    // SAFETY: no pointers.
    host(unsafe { libc::syscall(libc::SYS_fchdir, int(a[0])) })
}

fn fchmod(_p: &mut Process, a: [u64; 6]) -> Sys {
    // SAFETY: no pointers.
    host(unsafe { libc::syscall(libc::SYS_fchmod, int(a[0]), a[1] as u32 as c_long) })
}

fn fchmodat(p: &mut Process, a: [u64; 6]) -> Sys {
    let path = path_arg(p, a[1])?;
    // SAFETY: valid C string.
    host(unsafe {
        libc::syscall(
            libc::SYS_fchmodat,
            int(a[0]),
            path.as_ptr(),
            a[2] as u32 as c_long,
        )
    })
}

fn fchmodat2(p: &mut Process, a: [u64; 6]) -> Sys {
    let path = path_arg(p, a[1])?;
    // SAFETY: valid C string.
    host(unsafe {
        libc::syscall(
            libc::SYS_fchmodat2,
            int(a[0]),
            path.as_ptr(),
            a[2] as u32 as c_long,
            int(a[3]),
        )
    })
}

fn fchownat(p: &mut Process, a: [u64; 6]) -> Sys {
    let path = path_arg(p, a[1])?;
    // SAFETY: valid C string.
    host(unsafe {
        libc::syscall(
            libc::SYS_fchownat,
            int(a[0]),
            path.as_ptr(),
            a[2] as u32 as c_long,
            a[3] as u32 as c_long,
            int(a[4]),
        )
    })
}

fn fchown(_p: &mut Process, a: [u64; 6]) -> Sys {
    // SAFETY: no pointers.
    host(unsafe {
        libc::syscall(
            libc::SYS_fchown,
            int(a[0]),
            a[1] as u32 as c_long,
            a[2] as u32 as c_long,
        )
    })
}

fn utimensat(p: &mut Process, a: [u64; 6]) -> Sys {
    // NULL path means "the descriptor itself" (futimens); struct timespec[2] is the same layout.
    let path = opt_path_arg(p, a[1])?;
    let mut times = Aligned::<32>::new();
    let tp = if a[2] == 0 {
        std::ptr::null_mut()
    } else {
        times.0.copy_from_slice(&read_bytes(p, a[2], 32)?);
        times.ptr()
    };
    // SAFETY: path NULL or valid; tp NULL or a host timespec[2].
    host(unsafe {
        libc::syscall(
            libc::SYS_utimensat,
            int(a[0]),
            opt_ptr(&path),
            tp,
            int(a[3]),
        )
    })
}

fn getcwd(p: &mut Process, a: [u64; 6]) -> Sys {
    let mut buf = vec![0u8; (a[1] as usize).min(PATH_MAX)];
    // SAFETY: host buffer of buf.len() bytes.
    let r = unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr() as *mut c_void, buf.len()) };
    if r < 0 {
        return host(r);
    }
    // The kernel returns the length including the NUL.
    write_bytes(p, a[0], &buf[..r as usize])?;
    Ok(SysResult::Ret(r as i64))
}

fn umask(_p: &mut Process, a: [u64; 6]) -> Sys {
    // SAFETY: no pointers.
    host(unsafe { libc::syscall(libc::SYS_umask, a[0] as u32 as c_long) })
}

fn sync(_p: &mut Process, _a: [u64; 6]) -> Sys {
    // SAFETY: no arguments.
    unsafe { libc::sync() };
    Ok(SysResult::Ret(0))
}

fn fsync(_p: &mut Process, a: [u64; 6]) -> Sys {
    // SAFETY: no pointers.
    host(unsafe { libc::syscall(libc::SYS_fsync, int(a[0])) })
}

fn fdatasync(_p: &mut Process, a: [u64; 6]) -> Sys {
    // SAFETY: no pointers.
    host(unsafe { libc::syscall(libc::SYS_fdatasync, int(a[0])) })
}

fn syncfs(_p: &mut Process, a: [u64; 6]) -> Sys {
    // SAFETY: no pointers.
    host(unsafe { libc::syscall(libc::SYS_syncfs, int(a[0])) })
}

#[cfg(test)]
mod tests {
    use super::super::guest::testing::*;
    use super::*;

    const AT_FDCWD: u64 = -100i64 as u64;
    const G_O_DIRECTORY: u64 = 0o40000;

    #[test]
    fn open_flags_both_ways() {
        let g = 0o40000 | 0o100000 | 0o200000 | 0o400000 | 0o100 | 0o2000000 | 2;
        let h = open_flags_to_host(g);
        assert_eq!(
            h,
            libc::O_DIRECTORY
                | libc::O_NOFOLLOW
                | libc::O_DIRECT
                | libc::O_CREAT
                | libc::O_CLOEXEC
                | 2
        );
        assert_eq!(
            h & libc::O_LARGEFILE,
            0,
            "O_LARGEFILE is dropped on the host"
        );
        assert_eq!(open_flags_to_guest(0o100000 | libc::O_DIRECTORY), 0o440000);
        assert_eq!(
            open_flags_to_guest(libc::O_APPEND | libc::O_NONBLOCK | libc::O_RDWR),
            0o2000 | 0o4000 | 2
        );
        for b in 0..31 {
            let bit = 1u32 << b;
            if bit != GUEST_O_LARGEFILE {
                assert_eq!(
                    open_flags_to_guest(open_flags_to_host(bit)),
                    bit,
                    "bit {bit:#o}"
                );
            }
        }
        // O_TMPFILE (__O_TMPFILE | O_DIRECTORY) translates as a whole.
        assert_eq!(open_flags_to_host(0o20000000 | 0o40000), libc::O_TMPFILE);
    }

    #[test]
    fn stat_layout() {
        let d = temp_dir("statlayout");
        let f = d.join("f");
        std::fs::write(&f, b"0123456789").unwrap();
        let c = std::ffi::CString::new(f.to_str().unwrap()).unwrap();
        let mut st = zeroed_stat();
        // SAFETY: valid path and host struct.
        assert_eq!(unsafe { libc::stat(c.as_ptr(), &mut st) }, 0);
        let g = stat_to_guest(&st).unwrap();
        let u64_at = |o: usize| u64::from_le_bytes(g[o..o + 8].try_into().unwrap());
        let u32_at = |o: usize| u32::from_le_bytes(g[o..o + 4].try_into().unwrap());
        assert_eq!(u64_at(0), st.st_dev);
        assert_eq!(u64_at(8), st.st_ino);
        assert_eq!(u32_at(16), st.st_mode);
        assert_eq!(u32_at(16) & libc::S_IFMT, libc::S_IFREG);
        assert_eq!(u32_at(20), 1);
        assert_eq!(u32_at(24), st.st_uid);
        assert_eq!(u64_at(48), 10);
        assert_eq!(u32_at(56) as i64, st.st_blksize);
        assert_eq!(u64_at(64) as i64, st.st_blocks);
        assert_eq!(u64_at(88) as i64, st.st_mtime);
        assert_eq!(u64_at(96) as i64, st.st_mtime_nsec);
        assert_eq!(u64_at(104) as i64, st.st_ctime);
        assert!(g[120..].iter().all(|b| *b == 0));
        st.st_nlink = 1 << 40;
        assert_eq!(stat_to_guest(&st).unwrap_err(), libc::EOVERFLOW);
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn statfs_layout() {
        let s = HostStatfs {
            f_type: 0xEF53,
            f_bsize: 4096,
            f_blocks: 3,
            f_bfree: 4,
            f_bavail: 5,
            f_files: 6,
            f_ffree: 7,
            f_fsid: [8, 9],
            f_namelen: 255,
            f_frsize: 4096,
            f_flags: 0x20,
            f_spare: [0; 4],
        };
        assert_eq!(std::mem::size_of::<HostStatfs>(), GUEST_STATFS_SIZE);
        let g = statfs_to_guest(&s);
        let w = |o: usize| u64::from_le_bytes(g[o..o + 8].try_into().unwrap());
        assert_eq!(
            [w(0), w(8), w(16), w(24), w(32), w(40), w(48)],
            [0xEF53, 4096, 3, 4, 5, 6, 7]
        );
        assert_eq!(w(56), 8 | 9 << 32);
        assert_eq!([w(64), w(72), w(80)], [255, 4096, 0x20]);
    }

    #[test]
    fn open_fstat_read_close() {
        let mut p = process();
        let d = temp_dir("openfstat");
        let f = d.join("data.txt");
        std::fs::write(&f, b"hello guest").unwrap();
        put_str(&mut p, SCRATCH, f.to_str().unwrap().as_bytes());
        let SysResult::Ret(fd) = call(&mut p, 56, &[AT_FDCWD, SCRATCH, 0, 0]) else {
            panic!()
        };
        assert!(fd >= 0, "openat: {fd}");
        let st = SCRATCH + 0x1000;
        assert_eq!(call(&mut p, 80, &[fd as u64, st]), SysResult::Ret(0));
        assert_eq!(
            u64::from_le_bytes(get(&mut p, st + 48, 8).try_into().unwrap()),
            11
        );
        // newfstatat agrees; AT_EMPTY_PATH on the descriptor too.
        let st2 = SCRATCH + 0x1100;
        assert_eq!(
            call(&mut p, 79, &[AT_FDCWD, SCRATCH, st2, 0]),
            SysResult::Ret(0)
        );
        assert_eq!(get(&mut p, st, 128), get(&mut p, st2, 128));
        put_str(&mut p, SCRATCH + 0x1200, b"");
        assert_eq!(
            call(
                &mut p,
                79,
                &[fd as u64, SCRATCH + 0x1200, st2, AT_EMPTY_PATH]
            ),
            SysResult::Ret(0)
        );
        assert_eq!(get(&mut p, st, 128), get(&mut p, st2, 128));
        // statx passes through: stx_size at offset 40.
        assert_eq!(
            call(
                &mut p,
                291,
                &[
                    fd as u64,
                    SCRATCH + 0x1200,
                    AT_EMPTY_PATH,
                    0xfff,
                    SCRATCH + 0x2000
                ]
            ),
            SysResult::Ret(0)
        );
        assert_eq!(
            u64::from_le_bytes(get(&mut p, SCRATCH + 0x2000 + 40, 8).try_into().unwrap()),
            11
        );
        assert_eq!(
            call(&mut p, 63, &[fd as u64, SCRATCH + 0x3000, 100]),
            SysResult::Ret(11)
        );
        assert_eq!(get(&mut p, SCRATCH + 0x3000, 11), b"hello guest");
        assert_eq!(call(&mut p, 62, &[fd as u64, 6, 0]), SysResult::Ret(6));
        assert_eq!(
            call(&mut p, 63, &[fd as u64, SCRATCH + 0x3000, 100]),
            SysResult::Ret(5)
        );
        // Bad destination buffer: EFAULT, no host crash.
        assert_eq!(call(&mut p, 80, &[fd as u64, 8]), err(libc::EFAULT));
        assert_eq!(call(&mut p, 57, &[fd as u64]), SysResult::Ret(0));
        assert_eq!(call(&mut p, 57, &[fd as u64]), err(libc::EBADF));
        // Errors come back as the kernel's -errno.
        put_str(
            &mut p,
            SCRATCH,
            d.join("missing").to_str().unwrap().as_bytes(),
        );
        assert_eq!(
            call(&mut p, 56, &[AT_FDCWD, SCRATCH, 0, 0]),
            err(libc::ENOENT)
        );
        assert_eq!(
            call(&mut p, 79, &[AT_FDCWD, SCRATCH, st, 0]),
            err(libc::ENOENT)
        );
        assert_eq!(call(&mut p, 56, &[AT_FDCWD, 8, 0, 0]), err(libc::EFAULT));
        // The guest's O_DIRECTORY bit reaches the host as O_DIRECTORY.
        put_str(&mut p, SCRATCH, f.to_str().unwrap().as_bytes());
        assert_eq!(
            call(&mut p, 56, &[AT_FDCWD, SCRATCH, G_O_DIRECTORY, 0]),
            err(libc::ENOTDIR)
        );
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn directories() {
        let mut p = process();
        let d = temp_dir("dirs");
        let sub = d.join("sub");
        put_str(&mut p, SCRATCH, sub.to_str().unwrap().as_bytes());
        assert_eq!(
            call(&mut p, 34, &[AT_FDCWD, SCRATCH, 0o755]),
            SysResult::Ret(0)
        );
        assert_eq!(
            call(&mut p, 34, &[AT_FDCWD, SCRATCH, 0o755]),
            err(libc::EEXIST)
        );
        std::fs::write(sub.join("one"), b"1").unwrap();
        let SysResult::Ret(fd) = call(&mut p, 56, &[AT_FDCWD, SCRATCH, G_O_DIRECTORY, 0]) else {
            panic!()
        };
        assert!(fd >= 0);
        // F_GETFL reports guest bits (O_DIRECTORY | O_LARGEFILE as an AArch64 kernel would).
        assert_eq!(call(&mut p, 25, &[fd as u64, 3]), SysResult::Ret(0o440000));
        let SysResult::Ret(n) = call(&mut p, 61, &[fd as u64, SCRATCH + 0x1000, 4096]) else {
            panic!()
        };
        let buf = get(&mut p, SCRATCH + 0x1000, n as usize);
        let mut names = Vec::new();
        let mut off = 0;
        while off < buf.len() {
            let reclen = u16::from_le_bytes([buf[off + 16], buf[off + 17]]) as usize;
            let name = &buf[off + 19..off + reclen];
            names.push(
                String::from_utf8_lossy(&name[..name.iter().position(|b| *b == 0).unwrap()])
                    .into_owned(),
            );
            off += reclen;
        }
        names.sort();
        assert_eq!(names, [".", "..", "one"]);
        put_str(&mut p, SCRATCH + 0x100, b"one");
        assert_eq!(
            call(&mut p, 35, &[fd as u64, SCRATCH + 0x100, 0]),
            SysResult::Ret(0)
        );
        assert_eq!(call(&mut p, 57, &[fd as u64]), SysResult::Ret(0));
        assert_eq!(
            call(&mut p, 35, &[AT_FDCWD, SCRATCH, 0x200]),
            SysResult::Ret(0)
        );
        assert!(!sub.exists());
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn getcwd_and_readlink_exe() {
        let mut p = process();
        let cwd = std::env::current_dir().unwrap();
        let want = cwd.to_str().unwrap().as_bytes();
        assert_eq!(
            call(&mut p, 17, &[SCRATCH, 4096]),
            SysResult::Ret(want.len() as i64 + 1)
        );
        assert_eq!(get(&mut p, SCRATCH, want.len() + 1), [want, b"\0"].concat());
        assert_eq!(call(&mut p, 17, &[SCRATCH, 1]), err(libc::ERANGE));
        assert_eq!(call(&mut p, 17, &[8, 4096]), err(libc::EFAULT));
        put_str(&mut p, SCRATCH, b"/proc/self/exe");
        let exe = b"/nonexistent/vmrun-test-demo";
        assert_eq!(
            call(&mut p, 78, &[AT_FDCWD, SCRATCH, SCRATCH + 0x100, 256]),
            SysResult::Ret(exe.len() as i64)
        );
        assert_eq!(get(&mut p, SCRATCH + 0x100, exe.len()), exe);
        assert_eq!(
            call(&mut p, 78, &[AT_FDCWD, SCRATCH, SCRATCH + 0x100, 4]),
            SysResult::Ret(4)
        );
        assert_eq!(
            call(&mut p, 78, &[AT_FDCWD, SCRATCH, SCRATCH + 0x100, 0]),
            err(libc::EINVAL)
        );
        put_str(&mut p, SCRATCH, b"/");
        assert_eq!(call(&mut p, 48, &[AT_FDCWD, SCRATCH, 4]), SysResult::Ret(0));
    }
}
