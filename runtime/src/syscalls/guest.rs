//! Helpers shared by the syscall families: checked access to guest buffers and strings,
//! host-call result conversion and the `sys!` table-entry macro.
//!
//! Every guest pointer goes through [`GuestMemory`](crate::memory::GuestMemory)'s checked
//! accessors; host pointers handed to the kernel come only from those checked slices (or
//! from host-owned buffers), so a bad guest pointer yields -EFAULT, never a host crash.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

use vmc_compiler::mem::Fault;

use super::SysResult;
use crate::memory::{perm, PAGE};
use crate::process::Process;

/// What a handler body returns: `Err` short-circuits (e.g. -EFAULT via `?` on a [`Fault`]).
pub type Sys = Result<SysResult, SysResult>;

/// Linux PATH_MAX (including the terminating NUL).
pub const PATH_MAX: usize = 4096;

/// Builds a [`Syscall`](super::Syscall) entry from a handler returning [`Sys`].
macro_rules! sys {
    ($nr:expr, $name:literal, $f:path) => {
        $crate::syscalls::Syscall {
            nr: $nr,
            name: $name,
            handler: {
                fn h(p: &mut $crate::process::Process, a: [u64; 6]) -> $crate::syscalls::SysResult {
                    match $f(p, a) {
                        Ok(r) | Err(r) => r,
                    }
                }
                h
            },
        }
    };
}
pub(crate) use sys;

/// The result of a raw host `syscall()`/libc call: the value, or `-errno`.
pub fn host(r: libc::c_long) -> Sys {
    Ok(SysResult::host(r))
}

/// `Err(-errno)`.
pub fn fail<T>(errno: i32) -> Result<T, SysResult> {
    Err(SysResult::err(errno))
}

/// An 8-byte aligned host buffer for structures whose layout is the same for the guest.
#[repr(C, align(8))]
pub struct Aligned<const N: usize>(pub [u8; N]);

impl<const N: usize> Aligned<N> {
    /// A zeroed buffer.
    pub fn new() -> Self {
        Aligned([0; N])
    }
    /// Host pointer for the kernel to write to.
    pub fn ptr(&mut self) -> *mut libc::c_void {
        self.0.as_mut_ptr() as *mut libc::c_void
    }
}

impl<const N: usize> Default for Aligned<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// Length of the prefix of `[addr, addr+len)` whose pages all have `need`.
fn accessible_prefix(p: &Process, addr: u64, len: u64, need: u8) -> u64 {
    let mut done = 0u64;
    while done < len {
        let a = addr.wrapping_add(done);
        if a < addr || p.mem.perm(a) & need != need {
            break;
        }
        done += (PAGE - a % PAGE).min(len - done);
    }
    done
}

/// A guest buffer the kernel will write into (read, getdents, ...). Like Linux, a buffer
/// that is only partly writable is used up to the first bad page (short transfer), and
/// one that is not writable at all gives -EFAULT.
pub fn out_buf(p: &mut Process, addr: u64, len: u64) -> Result<&mut [u8], SysResult> {
    let n = if p.mem.slice_mut(addr, len).is_ok() {
        len
    } else {
        accessible_prefix(p, addr, len, perm::W)
    };
    if n == 0 && len != 0 {
        return fail(libc::EFAULT);
    }
    Ok(p.mem.slice_mut(addr, n)?)
}

/// A guest buffer the kernel will read from (write, ...), with the same partial rule.
pub fn in_buf(p: &mut Process, addr: u64, len: u64) -> Result<&[u8], SysResult> {
    let n = if p.mem.slice(addr, len).is_ok() {
        len
    } else {
        accessible_prefix(p, addr, len, perm::R)
    };
    if n == 0 && len != 0 {
        return fail(libc::EFAULT);
    }
    Ok(p.mem.slice(addr, n)?)
}

/// Linux looks the descriptor up before it touches the buffer: when a guest buffer is bad,
/// a descriptor that is not open (or not open for this direction: reading if `read`, else
/// writing) still gives EBADF; otherwise the buffer's error `e` stands.
pub fn fd_first(fd: libc::c_long, read: bool, e: SysResult) -> SysResult {
    // SAFETY: no pointers.
    let fl = unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_GETFL) };
    if fl < 0 {
        return SysResult::err(libc::EBADF);
    }
    let mode = fl as i32 & (libc::O_ACCMODE | libc::O_PATH);
    let ok = if read {
        mode == libc::O_RDONLY || mode == libc::O_RDWR
    } else {
        mode == libc::O_WRONLY || mode == libc::O_RDWR
    };
    if ok {
        e
    } else {
        SysResult::err(libc::EBADF)
    }
}

/// Copies guest bytes out.
pub fn read_bytes(p: &mut Process, addr: u64, len: usize) -> Result<Vec<u8>, Fault> {
    Ok(p.mem.slice(addr, len as u64)?.to_vec())
}

/// Copies bytes into the guest.
pub fn write_bytes(p: &mut Process, addr: u64, data: &[u8]) -> Result<(), Fault> {
    p.mem
        .slice_mut(addr, data.len() as u64)?
        .copy_from_slice(data);
    Ok(())
}

/// Reads a guest u64.
pub fn read_u64(p: &mut Process, addr: u64) -> Result<u64, Fault> {
    let s = p.mem.slice(addr, 8)?;
    Ok(u64::from_le_bytes(s.try_into().expect("8 bytes")))
}

/// Writes a guest u64.
pub fn write_u64(p: &mut Process, addr: u64, v: u64) -> Result<(), Fault> {
    write_bytes(p, addr, &v.to_le_bytes())
}

/// Reads a guest u32.
pub fn read_u32(p: &mut Process, addr: u64) -> Result<u32, Fault> {
    let s = p.mem.slice(addr, 4)?;
    Ok(u32::from_le_bytes(s.try_into().expect("4 bytes")))
}

/// Writes a guest u32.
pub fn write_u32(p: &mut Process, addr: u64, v: u32) -> Result<(), Fault> {
    write_bytes(p, addr, &v.to_le_bytes())
}

/// Reads a NUL-terminated guest path: -EFAULT if it runs into unreadable memory,
/// -ENAMETOOLONG if no NUL within PATH_MAX bytes.
pub fn read_path(p: &mut Process, addr: u64) -> Result<Vec<u8>, SysResult> {
    match p.mem.read_cstr(addr, PATH_MAX - 1) {
        Ok(v) => Ok(v),
        Err(_) if p.mem.slice(addr, PATH_MAX as u64).is_ok() => fail(libc::ENAMETOOLONG),
        Err(_) => fail(libc::EFAULT),
    }
}

/// Host C string for a guest path (sysroot applied to absolute paths).
pub fn host_cpath(p: &Process, guest: &[u8]) -> CString {
    let h = p.host_path(guest);
    CString::new(h.as_os_str().as_bytes()).unwrap_or_default()
}

/// Reads a guest path argument and maps it to the host.
pub fn path_arg(p: &mut Process, addr: u64) -> Result<CString, SysResult> {
    let g = read_path(p, addr)?;
    Ok(host_cpath(p, &g))
}

/// Like [`path_arg`], but a NULL pointer stays NULL (utimensat, statx with AT_EMPTY_PATH).
pub fn opt_path_arg(p: &mut Process, addr: u64) -> Result<Option<CString>, SysResult> {
    if addr == 0 {
        Ok(None)
    } else {
        path_arg(p, addr).map(Some)
    }
}

/// Pointer of an optional C string (NULL for `None`).
pub fn opt_ptr(s: &Option<CString>) -> *const libc::c_char {
    s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr())
}

/// Whether a guest path names this process's executable through /proc.
pub fn is_proc_self_exe(path: &[u8]) -> bool {
    path == b"/proc/self/exe"
        || path == b"/proc/thread-self/exe"
        || path == format!("/proc/{}/exe", std::process::id()).as_bytes()
}

/// Guest int argument (the kernel truncates `int` parameters to 32 bits).
pub fn int(a: u64) -> libc::c_long {
    a as i32 as libc::c_long
}

/// A process with real guest memory for handler tests.
#[cfg(test)]
pub mod testing {
    use std::path::Path;

    use crate::process::{Process, ProcessConfig};
    use crate::syscalls::{dispatch, SysResult};

    /// A writable guest scratch area mapped by [`process`].
    pub const SCRATCH: u64 = 0x2000_0000;
    /// Its size.
    pub const SCRATCH_LEN: u64 = 0x10000;

    /// The embedded demo guest, loaded, plus a scratch mapping.
    pub fn process() -> Process {
        let elf = include_bytes!("../../../vmrun/demo.elf");
        let mut p = Process::spawn_image(
            elf,
            Path::new("/nonexistent/vmrun-test-demo"),
            &[],
            &[],
            &ProcessConfig::default(),
        )
        .expect("demo loads");
        assert!(p.mem.is_free(SCRATCH, SCRATCH_LEN));
        p.mem.map(SCRATCH, SCRATCH_LEN, 3).expect("scratch maps");
        p
    }

    /// Performs syscall `nr` with `args` through the dispatcher.
    pub fn call(p: &mut Process, nr: u64, args: &[u64]) -> SysResult {
        p.cpu.x[8] = nr;
        for i in 0..6 {
            p.cpu.x[i] = args.get(i).copied().unwrap_or(0);
        }
        dispatch(p)
    }

    /// Places a NUL-terminated string in guest memory.
    pub fn put_str(p: &mut Process, addr: u64, s: &[u8]) {
        let mut v = s.to_vec();
        v.push(0);
        p.mem
            .slice_mut(addr, v.len() as u64)
            .expect("mapped")
            .copy_from_slice(&v);
    }

    /// Reads guest bytes.
    pub fn get(p: &mut Process, addr: u64, len: usize) -> Vec<u8> {
        p.mem.slice(addr, len as u64).expect("mapped").to_vec()
    }

    /// A fresh host scratch directory for one test.
    pub fn temp_dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("vmrun-sys-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    }

    /// `-errno` as a result.
    pub fn err(e: i32) -> SysResult {
        SysResult::Ret(-(e as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn partial_buffers_and_paths() {
        let mut p = process();
        // A buffer running off the end of the mapping is used up to the last good byte.
        assert_eq!(
            out_buf(&mut p, SCRATCH + SCRATCH_LEN - 10, 100)
                .unwrap()
                .len(),
            10
        );
        assert_eq!(
            in_buf(&mut p, SCRATCH + SCRATCH_LEN - 10, 100)
                .unwrap()
                .len(),
            10
        );
        assert_eq!(
            out_buf(&mut p, 8, 100).unwrap_err(),
            SysResult::err(libc::EFAULT)
        );
        assert_eq!(out_buf(&mut p, 8, 0).unwrap().len(), 0);
        // Paths: EFAULT vs ENAMETOOLONG.
        assert_eq!(
            read_path(&mut p, 8).unwrap_err(),
            SysResult::err(libc::EFAULT)
        );
        p.mem.slice_mut(SCRATCH, 5000).unwrap().fill(b'a');
        assert_eq!(
            read_path(&mut p, SCRATCH).unwrap_err(),
            SysResult::err(libc::ENAMETOOLONG)
        );
        put_str(&mut p, SCRATCH, b"/etc/x");
        assert_eq!(read_path(&mut p, SCRATCH).unwrap(), b"/etc/x");
        // Unterminated string at the end of the mapping.
        p.mem
            .slice_mut(SCRATCH + SCRATCH_LEN - 4, 4)
            .unwrap()
            .fill(b'b');
        assert_eq!(
            read_path(&mut p, SCRATCH + SCRATCH_LEN - 4).unwrap_err(),
            SysResult::err(libc::EFAULT)
        );
    }
}
