//! Data transfer and descriptors that are not files: read, write, the vectored and
//! positioned variants, sendfile, copy_file_range, pipe2, eventfd2, memfd_create, ioctl
//! (terminal requests), pselect6 and ppoll.

use libc::{c_long, c_void};

use super::fs::open_flags_to_host;
use super::guest::{
    fail, fd_first, host, in_buf, int, out_buf, read_bytes, read_u64, sys, write_bytes, Aligned,
    Sys,
};
use super::{SysResult, Syscall};
use crate::process::Process;

/// This family's syscalls.
pub const TABLE: &[Syscall] = &[
    sys!(29, "ioctl", ioctl),
    sys!(59, "pipe2", pipe2),
    sys!(63, "read", read),
    sys!(64, "write", write),
    sys!(65, "readv", readv),
    sys!(66, "writev", writev),
    sys!(67, "pread64", pread64),
    sys!(68, "pwrite64", pwrite64),
    sys!(69, "preadv", preadv),
    sys!(70, "pwritev", pwritev),
    sys!(71, "sendfile", sendfile),
    sys!(72, "pselect6", pselect6),
    sys!(73, "ppoll", ppoll),
    sys!(19, "eventfd2", eventfd2),
    sys!(279, "memfd_create", memfd_create),
    sys!(285, "copy_file_range", copy_file_range),
    sys!(286, "preadv2", preadv2),
    sys!(287, "pwritev2", pwritev2),
];

fn read(p: &mut Process, a: [u64; 6]) -> Sys {
    let buf = out_buf(p, a[1], a[2]).map_err(|e| fd_first(int(a[0]), true, e))?;
    // SAFETY: buf is a checked, writable guest slice.
    host(unsafe { libc::syscall(libc::SYS_read, int(a[0]), buf.as_mut_ptr(), buf.len()) })
}

fn write(p: &mut Process, a: [u64; 6]) -> Sys {
    let buf = in_buf(p, a[1], a[2]).map_err(|e| fd_first(int(a[0]), false, e))?;
    // SAFETY: buf is a checked, readable guest slice.
    host(unsafe { libc::syscall(libc::SYS_write, int(a[0]), buf.as_ptr(), buf.len()) })
}

fn pread64(p: &mut Process, a: [u64; 6]) -> Sys {
    let buf = out_buf(p, a[1], a[2]).map_err(|e| fd_first(int(a[0]), true, e))?;
    // SAFETY: buf is a checked, writable guest slice.
    host(unsafe {
        libc::syscall(
            libc::SYS_pread64,
            int(a[0]),
            buf.as_mut_ptr(),
            buf.len(),
            a[3] as i64,
        )
    })
}

fn pwrite64(p: &mut Process, a: [u64; 6]) -> Sys {
    let buf = in_buf(p, a[1], a[2]).map_err(|e| fd_first(int(a[0]), false, e))?;
    // SAFETY: buf is a checked, readable guest slice.
    host(unsafe {
        libc::syscall(
            libc::SYS_pwrite64,
            int(a[0]),
            buf.as_ptr(),
            buf.len(),
            a[3] as i64,
        )
    })
}

/// Linux UIO_MAXIOV.
const UIO_MAXIOV: i32 = 1024;

/// Converts a guest iovec array (struct iovec is {base, len}, 16 bytes, on both) into host
/// iovecs pointing at checked guest slices. Every non-empty element must be accessible
/// (for writing if `write`), else -EFAULT.
fn host_iovecs(
    p: &mut Process,
    iov: u64,
    cnt: u64,
    write: bool,
) -> Result<Vec<libc::iovec>, SysResult> {
    let cnt = cnt as i32;
    if !(0..=UIO_MAXIOV).contains(&cnt) {
        return fail(libc::EINVAL);
    }
    let raw = read_bytes(p, iov, cnt as usize * 16)?;
    let mut out = Vec::with_capacity(cnt as usize);
    let mut total: u64 = 0;
    for e in raw.chunks_exact(16) {
        let base = u64::from_le_bytes(e[..8].try_into().expect("8 bytes"));
        let len = u64::from_le_bytes(e[8..].try_into().expect("8 bytes"));
        if len > isize::MAX as u64 {
            return fail(libc::EINVAL);
        }
        total = total.saturating_add(len);
        if total > isize::MAX as u64 {
            return fail(libc::EINVAL);
        }
        if len == 0 {
            out.push(libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            });
            continue;
        }
        // The pointers stay valid for the duration of the host call: nothing unmaps guest
        // memory while a handler runs.
        let ptr = if write {
            p.mem.slice_mut(base, len)?.as_mut_ptr()
        } else {
            p.mem.slice(base, len)?.as_ptr() as *mut u8
        };
        out.push(libc::iovec {
            iov_base: ptr as *mut c_void,
            iov_len: len as usize,
        });
    }
    Ok(out)
}

fn readv(p: &mut Process, a: [u64; 6]) -> Sys {
    let v = host_iovecs(p, a[1], a[2], true).map_err(|e| fd_first(int(a[0]), true, e))?;
    // SAFETY: host iovecs over checked, writable guest slices.
    host(unsafe { libc::syscall(libc::SYS_readv, int(a[0]), v.as_ptr(), v.len()) })
}

fn writev(p: &mut Process, a: [u64; 6]) -> Sys {
    let v = host_iovecs(p, a[1], a[2], false).map_err(|e| fd_first(int(a[0]), false, e))?;
    // SAFETY: host iovecs over checked, readable guest slices.
    host(unsafe { libc::syscall(libc::SYS_writev, int(a[0]), v.as_ptr(), v.len()) })
}

fn preadv(p: &mut Process, a: [u64; 6]) -> Sys {
    let v = host_iovecs(p, a[1], a[2], true).map_err(|e| fd_first(int(a[0]), true, e))?;
    // SAFETY: as readv; on 64-bit the offset is the low word argument (high word 0).
    host(unsafe {
        libc::syscall(
            libc::SYS_preadv,
            int(a[0]),
            v.as_ptr(),
            v.len(),
            a[3] as i64,
            0,
        )
    })
}

fn pwritev(p: &mut Process, a: [u64; 6]) -> Sys {
    let v = host_iovecs(p, a[1], a[2], false).map_err(|e| fd_first(int(a[0]), false, e))?;
    // SAFETY: as writev.
    host(unsafe {
        libc::syscall(
            libc::SYS_pwritev,
            int(a[0]),
            v.as_ptr(),
            v.len(),
            a[3] as i64,
            0,
        )
    })
}

fn preadv2(p: &mut Process, a: [u64; 6]) -> Sys {
    let v = host_iovecs(p, a[1], a[2], true).map_err(|e| fd_first(int(a[0]), true, e))?;
    // SAFETY: as readv; offset -1 means the current position; RWF_* flags are the same.
    host(unsafe {
        libc::syscall(
            libc::SYS_preadv2,
            int(a[0]),
            v.as_ptr(),
            v.len(),
            a[3] as i64,
            0,
            a[5] as u32 as c_long,
        )
    })
}

fn pwritev2(p: &mut Process, a: [u64; 6]) -> Sys {
    let v = host_iovecs(p, a[1], a[2], false).map_err(|e| fd_first(int(a[0]), false, e))?;
    // SAFETY: as writev.
    host(unsafe {
        libc::syscall(
            libc::SYS_pwritev2,
            int(a[0]),
            v.as_ptr(),
            v.len(),
            a[3] as i64,
            0,
            a[5] as u32 as c_long,
        )
    })
}

fn copy_file_range(p: &mut Process, a: [u64; 6]) -> Sys {
    // Optional loff_t pointers for both ends, copied in and back out.
    let mut offs = [0i64; 2];
    for (i, addr) in [a[1], a[3]].into_iter().enumerate() {
        if addr != 0 {
            offs[i] = read_u64(p, addr)? as i64;
        }
    }
    let base = offs.as_mut_ptr();
    let (pin, pout) = (
        if a[1] != 0 {
            base
        } else {
            std::ptr::null_mut()
        },
        // SAFETY: base points at two i64s.
        if a[3] != 0 {
            unsafe { base.add(1) }
        } else {
            std::ptr::null_mut()
        },
    );
    // SAFETY: offsets are NULL or host i64s.
    let r = unsafe {
        libc::syscall(
            libc::SYS_copy_file_range,
            int(a[0]),
            pin,
            int(a[2]),
            pout,
            a[4] as usize,
            a[5] as u32 as c_long,
        )
    };
    if r >= 0 {
        for (i, addr) in [a[1], a[3]].into_iter().enumerate() {
            if addr != 0 {
                write_bytes(p, addr, &offs[i].to_le_bytes())?;
            }
        }
    }
    host(r)
}

fn eventfd2(_p: &mut Process, a: [u64; 6]) -> Sys {
    // EFD_CLOEXEC/EFD_NONBLOCK equal O_CLOEXEC/O_NONBLOCK, the same on both.
    // SAFETY: no pointers.
    host(unsafe { libc::syscall(libc::SYS_eventfd2, a[0] as u32 as c_long, int(a[1])) })
}

fn memfd_create(p: &mut Process, a: [u64; 6]) -> Sys {
    // The name is at most 249 bytes plus NUL (longer: EINVAL); MFD_* flags are the same.
    let name = match p.mem.read_cstr(a[0], 249) {
        Ok(n) => n,
        Err(_) if p.mem.slice(a[0], 250).is_ok() => return fail(libc::EINVAL),
        Err(e) => return Err(e.into()),
    };
    let name = std::ffi::CString::new(name).unwrap_or_default();
    // SAFETY: valid C string.
    host(unsafe { libc::syscall(libc::SYS_memfd_create, name.as_ptr(), a[1] as u32 as c_long) })
}

fn sendfile(p: &mut Process, a: [u64; 6]) -> Sys {
    let mut off: i64 = 0;
    let offp: *mut i64 = if a[2] == 0 {
        std::ptr::null_mut()
    } else {
        off = read_u64(p, a[2])? as i64;
        &mut off
    };
    // SAFETY: offp is NULL or points at a host i64.
    let r = unsafe {
        libc::syscall(
            libc::SYS_sendfile,
            int(a[0]),
            int(a[1]),
            offp,
            a[3] as usize,
        )
    };
    if a[2] != 0 && r >= 0 {
        write_bytes(p, a[2], &off.to_le_bytes())?;
    }
    host(r)
}

fn pipe2(p: &mut Process, a: [u64; 6]) -> Sys {
    let mut fds = [0i32; 2];
    // SAFETY: fds is a host int[2]. Flags are translated (O_DIRECT differs).
    let r = unsafe {
        libc::syscall(
            libc::SYS_pipe2,
            fds.as_mut_ptr(),
            open_flags_to_host(a[1] as u32) as c_long,
        )
    };
    if r < 0 {
        return host(r);
    }
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&fds[0].to_le_bytes());
    b[4..].copy_from_slice(&fds[1].to_le_bytes());
    if write_bytes(p, a[0], &b).is_err() {
        // As Linux: the new descriptors are released and the call fails with EFAULT.
        for fd in fds {
            // SAFETY: closing descriptors we just created.
            unsafe { libc::close(fd) };
        }
        return fail(libc::EFAULT);
    }
    Ok(SysResult::Ret(0))
}

// ioctl requests (asm-generic values, identical on x86-64).
const TCGETS: u32 = 0x5401;
const TCSETS: u32 = 0x5402;
const TCSETSW: u32 = 0x5403;
const TCSETSF: u32 = 0x5404;
const TCSBRK: u32 = 0x5409;
const TCXONC: u32 = 0x540A;
const TCFLSH: u32 = 0x540B;
const TIOCGPGRP: u32 = 0x540F;
const TIOCSPGRP: u32 = 0x5410;
const TIOCGWINSZ: u32 = 0x5413;
const TIOCSWINSZ: u32 = 0x5414;
const FIONREAD: u32 = 0x541B;
const FIONBIO: u32 = 0x5421;
const TIOCGSID: u32 = 0x5429;
const FIONCLEX: u32 = 0x5450;
const FIOCLEX: u32 = 0x5451;

/// Size of the kernel's struct termios (same on asm-generic and x86-64: 4 x tcflag_t,
/// c_line, c_cc[19]).
const TERMIOS_SIZE: usize = 36;

enum Arg {
    /// The argument is a plain value.
    Value,
    /// Pointer to `n` bytes the kernel reads.
    In(usize),
    /// Pointer to `n` bytes the kernel writes.
    Out(usize),
}

fn ioctl(p: &mut Process, a: [u64; 6]) -> Sys {
    let (fd, req) = (int(a[0]), a[1] as u32);
    let kind = match req {
        TCGETS => Arg::Out(TERMIOS_SIZE),
        TCSETS | TCSETSW | TCSETSF => Arg::In(TERMIOS_SIZE),
        TIOCGWINSZ => Arg::Out(8),
        TIOCSWINSZ => Arg::In(8),
        TIOCGPGRP | FIONREAD | TIOCGSID => Arg::Out(4),
        TIOCSPGRP | FIONBIO => Arg::In(4),
        TCSBRK | TCXONC | TCFLSH | FIONCLEX | FIOCLEX => Arg::Value,
        _ => {
            // Unknown request: the descriptor is still checked (EBADF), then ENOTTY, which is
            // what Linux answers for a request the file does not support.
            // SAFETY: no pointers.
            let r = unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_GETFD) };
            if r < 0 {
                return host(r);
            }
            log::debug!("ioctl: unsupported request {req:#x} on fd {fd}: ENOTTY");
            return fail(libc::ENOTTY);
        }
    };
    let mut buf = Aligned::<64>::new();
    // SAFETY (all three): scalar arguments or a host buffer larger than what the request uses.
    match kind {
        Arg::Value => {
            host(unsafe { libc::syscall(libc::SYS_ioctl, fd, req as c_long, a[2] as c_long) })
        }
        Arg::In(n) => {
            let arg = read_bytes(p, a[2], n).map_err(|e| {
                // SAFETY: no pointers.
                let bad = unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_GETFD) } < 0;
                if bad {
                    SysResult::err(libc::EBADF)
                } else {
                    e.into()
                }
            })?;
            buf.0[..n].copy_from_slice(&arg);
            host(unsafe { libc::syscall(libc::SYS_ioctl, fd, req as c_long, buf.ptr()) })
        }
        Arg::Out(n) => {
            let r = unsafe { libc::syscall(libc::SYS_ioctl, fd, req as c_long, buf.ptr()) };
            if r < 0 {
                return host(r);
            }
            write_bytes(p, a[2], &buf.0[..n])?;
            Ok(SysResult::Ret(r as i64))
        }
    }
}

/// Reads an optional struct timespec (same 16-byte layout on both).
fn read_timespec(p: &mut Process, addr: u64) -> Result<Option<libc::timespec>, SysResult> {
    if addr == 0 {
        return Ok(None);
    }
    let b = read_bytes(p, addr, 16)?;
    Ok(Some(libc::timespec {
        tv_sec: i64::from_le_bytes(b[..8].try_into().expect("8")),
        tv_nsec: i64::from_le_bytes(b[8..].try_into().expect("8")),
    }))
}

fn write_timespec(p: &mut Process, addr: u64, t: &libc::timespec) -> Result<(), SysResult> {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&t.tv_sec.to_le_bytes());
    b[8..].copy_from_slice(&t.tv_nsec.to_le_bytes());
    write_bytes(p, addr, &b)?;
    Ok(())
}

/// Checks the sigmask argument of ppoll (pointer + size); the mask itself is not applied
/// because no signal is ever delivered asynchronously to the guest.
fn check_sigmask(p: &mut Process, mask: u64, size: u64) -> Result<(), SysResult> {
    if mask != 0 {
        if size != 8 {
            return fail(libc::EINVAL);
        }
        read_bytes(p, mask, 8)?;
    }
    Ok(())
}

fn pselect6(p: &mut Process, a: [u64; 6]) -> Sys {
    let n = a[0] as i32;
    if n < 0 {
        return fail(libc::EINVAL);
    }
    // fd_set is an array of unsigned long on both; only ceil(n/64) words are touched.
    let words = (n as usize).div_ceil(64);
    let mut sets: [Option<Vec<u64>>; 3] = [None, None, None];
    for (i, s) in sets.iter_mut().enumerate() {
        if a[1 + i] != 0 {
            let b = read_bytes(p, a[1 + i], words * 8)?;
            let mut v: Vec<u64> = b
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().expect("8")))
                .collect();
            v.push(0); // never hand the kernel an empty (dangling) buffer
            *s = Some(v);
        }
    }
    let mut ts = read_timespec(p, a[4])?;
    // The 6th argument points at { const sigset_t *ss; size_t ss_len; }.
    if a[5] != 0 {
        let b = read_bytes(p, a[5], 16)?;
        let mask = u64::from_le_bytes(b[..8].try_into().expect("8"));
        let size = u64::from_le_bytes(b[8..].try_into().expect("8"));
        check_sigmask(p, mask, size)?;
    }
    let ptr =
        |s: &mut Option<Vec<u64>>| s.as_mut().map_or(std::ptr::null_mut(), |v| v.as_mut_ptr());
    let [r0, w0, e0] = &mut sets;
    let (rp, wp, ep) = (ptr(r0), ptr(w0), ptr(e0));
    let tp = ts
        .as_mut()
        .map_or(std::ptr::null_mut(), |t| t as *mut libc::timespec);
    // SAFETY: each set is NULL or a host buffer of at least `words` longs; tp NULL or a host
    // timespec; no signal mask.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pselect6,
            n as c_long,
            rp,
            wp,
            ep,
            tp,
            std::ptr::null::<c_void>(),
        )
    };
    if let Some(t) = &ts {
        // Linux writes the remaining time back (also on EINTR); ignore a failure like it does.
        let _ = write_timespec(p, a[4], t);
    }
    if r < 0 {
        return host(r);
    }
    for (i, s) in sets.iter().enumerate() {
        if let Some(v) = s {
            let b: Vec<u8> = v[..words].iter().flat_map(|w| w.to_le_bytes()).collect();
            write_bytes(p, a[1 + i], &b)?;
        }
    }
    Ok(SysResult::Ret(r as i64))
}

fn ppoll(p: &mut Process, a: [u64; 6]) -> Sys {
    let nfds = a[1] as u32 as usize;
    if nfds > 1 << 20 {
        return fail(libc::EINVAL);
    }
    // struct pollfd { int fd; short events; short revents; } is the same on both.
    let raw = read_bytes(p, a[0], nfds * 8)?;
    let mut fds: Vec<libc::pollfd> = raw
        .chunks_exact(8)
        .map(|c| libc::pollfd {
            fd: i32::from_le_bytes(c[..4].try_into().expect("4")),
            events: i16::from_le_bytes(c[4..6].try_into().expect("2")),
            revents: 0,
        })
        .collect();
    let guest_fds: Vec<i32> = fds.iter().map(|f| f.fd).collect();
    // Runtime descriptors are closed ones for the guest: POLLNVAL, and no waiting.
    let nval = fds.iter().filter(|f| super::fds::poll_hidden(f.fd)).count();
    fds.iter_mut()
        .filter(|f| super::fds::poll_hidden(f.fd))
        .for_each(|f| f.fd = -1);
    let mut ts = read_timespec(p, a[2])?;
    let guest_ts = ts;
    if nval > 0 {
        ts = Some(libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        });
    }
    check_sigmask(p, a[3], a[4])?;
    let tp = ts
        .as_mut()
        .map_or(std::ptr::null_mut(), |t| t as *mut libc::timespec);
    // SAFETY: fds is a host pollfd array of nfds entries; tp NULL or a host timespec.
    let r = unsafe {
        libc::syscall(
            libc::SYS_ppoll,
            fds.as_mut_ptr(),
            nfds,
            tp,
            std::ptr::null::<c_void>(),
            8usize,
        )
    };
    if let Some(t) = if nval > 0 { &guest_ts } else { &ts } {
        let _ = write_timespec(p, a[2], t);
    }
    if r < 0 {
        return host(r);
    }
    let r = r + nval as c_long;
    for (f, g) in fds.iter_mut().zip(&guest_fds) {
        if super::fds::poll_hidden(*g) {
            f.revents = libc::POLLNVAL;
        }
        f.fd = *g;
    }
    let out: Vec<u8> = fds
        .iter()
        .flat_map(|f| {
            let mut b = [0u8; 8];
            b[..4].copy_from_slice(&f.fd.to_le_bytes());
            b[4..6].copy_from_slice(&f.events.to_le_bytes());
            b[6..].copy_from_slice(&f.revents.to_le_bytes());
            b
        })
        .collect();
    write_bytes(p, a[0], &out)?;
    Ok(SysResult::Ret(r as i64))
}

#[cfg(test)]
mod tests {
    use super::super::guest::testing::*;
    use super::*;

    fn pipe(p: &mut Process) -> (u64, u64) {
        assert_eq!(
            call(p, 59, &[SCRATCH + 0x800, 0o2000000]),
            SysResult::Ret(0)
        );
        let b = get(p, SCRATCH + 0x800, 8);
        let r = i32::from_le_bytes(b[..4].try_into().unwrap());
        let w = i32::from_le_bytes(b[4..].try_into().unwrap());
        assert!(r >= 0 && w >= 0 && r != w);
        (r as u64, w as u64)
    }

    fn close(p: &mut Process, fds: (u64, u64)) {
        assert_eq!(call(p, 57, &[fds.0]), SysResult::Ret(0));
        assert_eq!(call(p, 57, &[fds.1]), SysResult::Ret(0));
    }

    #[test]
    fn pipe_write_then_read() {
        let mut p = process();
        let (r, w) = pipe(&mut p);
        put_str(&mut p, SCRATCH, b"through the pipe");
        assert_eq!(call(&mut p, 64, &[w, SCRATCH, 16]), SysResult::Ret(16));
        // FIONREAD sees the bytes; TCGETS on a pipe is ENOTTY.
        assert_eq!(
            call(&mut p, 29, &[r, 0x541B, SCRATCH + 0x100]),
            SysResult::Ret(0)
        );
        assert_eq!(get(&mut p, SCRATCH + 0x100, 4), 16u32.to_le_bytes());
        assert_eq!(
            call(&mut p, 29, &[r, 0x5401, SCRATCH + 0x100]),
            err(libc::ENOTTY)
        );
        assert_eq!(call(&mut p, 29, &[r, 0x1234, 0]), err(libc::ENOTTY));
        assert_eq!(call(&mut p, 29, &[999_999, 0x1234, 0]), err(libc::EBADF));
        // ppoll: readable.
        let pfd = SCRATCH + 0x200;
        let mut rec = [0u8; 8];
        rec[..4].copy_from_slice(&(r as i32).to_le_bytes());
        rec[4..6].copy_from_slice(&1i16.to_le_bytes()); // POLLIN
        p.mem.slice_mut(pfd, 8).unwrap().copy_from_slice(&rec);
        assert_eq!(call(&mut p, 73, &[pfd, 1, 0, 0, 8]), SysResult::Ret(1));
        assert_eq!(
            i16::from_le_bytes(get(&mut p, pfd + 6, 2).try_into().unwrap()) & 1,
            1
        );
        // readv into two pieces.
        let iov = SCRATCH + 0x300;
        let mut v = Vec::new();
        for (base, len) in [(SCRATCH + 0x400, 7u64), (SCRATCH + 0x500, 9)] {
            v.extend_from_slice(&base.to_le_bytes());
            v.extend_from_slice(&len.to_le_bytes());
        }
        p.mem.slice_mut(iov, 32).unwrap().copy_from_slice(&v);
        assert_eq!(call(&mut p, 65, &[r, iov, 2]), SysResult::Ret(16));
        assert_eq!(get(&mut p, SCRATCH + 0x400, 7), b"through");
        assert_eq!(get(&mut p, SCRATCH + 0x500, 9), b" the pipe");
        // Bad guest buffers give EFAULT.
        assert_eq!(call(&mut p, 64, &[w, 8, 16]), err(libc::EFAULT));
        assert_eq!(call(&mut p, 63, &[r, 8, 16]), err(libc::EFAULT));
        assert_eq!(call(&mut p, 65, &[r, 8, 2]), err(libc::EFAULT));
        assert_eq!(call(&mut p, 59, &[8, 0]), err(libc::EFAULT));
        // The descriptor is checked before the buffer, as in Linux.
        assert_eq!(call(&mut p, 63, &[999_999, 8, 16]), err(libc::EBADF));
        assert_eq!(call(&mut p, 63, &[w, 8, 16]), err(libc::EBADF)); // write end is not readable
        assert_eq!(call(&mut p, 64, &[r, 8, 16]), err(libc::EBADF));
        assert_eq!(call(&mut p, 59, &[SCRATCH, 0o777]), err(libc::EINVAL));
        close(&mut p, (r, w));
    }

    #[test]
    fn pselect_timeout() {
        let mut p = process();
        let (r, w) = pipe(&mut p);
        let set = SCRATCH + 0x100;
        p.mem.slice_mut(set, 128).unwrap().fill(0);
        p.mem.slice_mut(set + r / 8, 1).unwrap()[0] = 1 << (r % 8);
        let ts = SCRATCH + 0x200;
        p.mem.slice_mut(ts, 16).unwrap().copy_from_slice(&[0u8; 16]);
        // Nothing to read: times out at once with 0 and clears the set.
        assert_eq!(
            call(&mut p, 72, &[r + 1, set, 0, 0, ts, 0]),
            SysResult::Ret(0)
        );
        assert_eq!(get(&mut p, set + r / 8, 1)[0], 0);
        put_str(&mut p, SCRATCH, b"x");
        assert_eq!(call(&mut p, 64, &[w, SCRATCH, 1]), SysResult::Ret(1));
        p.mem.slice_mut(set + r / 8, 1).unwrap()[0] = 1 << (r % 8);
        assert_eq!(
            call(&mut p, 72, &[r + 1, set, 0, 0, ts, 0]),
            SysResult::Ret(1)
        );
        assert_eq!(get(&mut p, set + r / 8, 1)[0], 1 << (r % 8));
        close(&mut p, (r, w));
    }
}
