//! Processes: clone (fork and vfork), clone3, execve, execveat, wait4, waitid.
//!
//! A guest child is a real host process, as under qemu-user: fork copies the whole emulator
//! (guest memory included, copy-on-write), vfork is emulated as a fork whose parent waits
//! until the child has exec'd or exited, and execve starts a fresh emulator
//! (`/proc/self/exe`) on the new program with the guest's argv and envp (see [`vmrun_argv`]:
//! the guest's envp is the new guest's environment, never the new emulator's). wait4 and waitid
//! therefore pass through to the host. Threads (CLONE_VM without CLONE_VFORK,
//! CLONE_THREAD) are not supported.

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::guest::{fail, host, is_proc_self_exe, read_path, sys, write_bytes, write_u32, Sys};
use super::{signal, SysResult, Syscall};
use crate::process::Process;

/// This family's syscalls.
pub const TABLE: &[Syscall] = &[
    sys!(95, "waitid", waitid),
    sys!(220, "clone", clone),
    sys!(221, "execve", execve),
    sys!(260, "wait4", wait4),
    sys!(281, "execveat", execveat),
    sys!(435, "clone3", clone3),
];

const CSIGNAL: u64 = 0xff;
const CLONE_VM: u64 = 0x100;
const CLONE_FS: u64 = 0x200;
const CLONE_FILES: u64 = 0x400;
const CLONE_SIGHAND: u64 = 0x800;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_THREAD: u64 = 0x10000;
const CLONE_SYSVSEM: u64 = 0x40000;
const CLONE_SETTLS: u64 = 0x80000;
const CLONE_PARENT_SETTID: u64 = 0x10_0000;
const CLONE_CHILD_CLEARTID: u64 = 0x20_0000;
const CLONE_DETACHED: u64 = 0x40_0000;
const CLONE_CHILD_SETTID: u64 = 0x100_0000;

/// Key in `Process::warned` for the one-time "threads" warning.
const THREAD_WARNING: u64 = 0x2_0000_0000 | 220;

/// clone(flags, stack, parent_tid, tls, child_tid) (arm64 argument order).
fn clone(p: &mut Process, a: [u64; 6]) -> Sys {
    let (flags, stack, ptid, tls, ctid) = (a[0], a[1], a[2], a[3], a[4]);
    let vfork = flags & (CLONE_VM | CLONE_VFORK) == CLONE_VM | CLONE_VFORK;
    if flags & (CLONE_THREAD | CLONE_SIGHAND) != 0 || (flags & CLONE_VM != 0 && !vfork) {
        if p.warned.insert(THREAD_WARNING) {
            eprintln!(
                "vmrun: warning: clone({flags:#x}): threads are not supported, returning ENOSYS"
            );
        }
        return fail(libc::ENOSYS);
    }
    let supported = CSIGNAL
        | CLONE_VM
        | CLONE_FS
        | CLONE_FILES
        | CLONE_VFORK
        | CLONE_SYSVSEM
        | CLONE_SETTLS
        | CLONE_PARENT_SETTID
        | CLONE_CHILD_CLEARTID
        | CLONE_DETACHED
        | CLONE_CHILD_SETTID;
    if flags & !supported != 0 {
        eprintln!(
            "vmrun: warning: clone({flags:#x}): unsupported flags {:#x}, returning EINVAL",
            flags & !supported
        );
        return fail(libc::EINVAL);
    }
    if flags & (CLONE_FS | CLONE_FILES) != 0 && !vfork {
        // Sharing the cwd or the descriptor table with a separate process is impossible.
        return fail(libc::EINVAL);
    }
    let exit_signal = (flags & CSIGNAL) as i32;
    // vfork: the parent sleeps until the child execs or exits, i.e. until the child's
    // close-on-exec end of this pipe is closed.
    let gate = if vfork { Some(cloexec_pipe()?) } else { None };
    // SAFETY: the emulator is single-threaded, so the child is a complete copy. A raw clone
    // (no CLONE_VM) is a fork with another exit signal.
    let pid = unsafe {
        if exit_signal == libc::SIGCHLD {
            libc::fork() as libc::c_long
        } else {
            libc::syscall(libc::SYS_clone, exit_signal as libc::c_long, 0, 0, 0, 0)
        }
    };
    if pid < 0 {
        if let Some((r, w)) = gate {
            close(r);
            close(w);
        }
        return host(-1);
    }
    if pid == 0 {
        p.fork_child = true;
        signal::clear_pending_after_fork(p);
        if let Some((r, _w)) = gate {
            close(r);
        }
        if flags & CLONE_CHILD_SETTID != 0 {
            // SAFETY: no arguments.
            let tid = unsafe { libc::gettid() };
            let _ = write_u32(p, ctid, tid as u32);
        }
        if flags & CLONE_CHILD_CLEARTID != 0 {
            p.sys.clear_child_tid = ctid;
        }
        if flags & CLONE_SETTLS != 0 {
            p.cpu.tpidr_el0 = tls;
        }
        if stack != 0 {
            p.cpu.x[31] = stack;
        }
        return Ok(SysResult::Ret(0));
    }
    if flags & CLONE_PARENT_SETTID != 0 {
        let _ = write_u32(p, ptid, pid as u32);
    }
    if let Some((r, w)) = gate {
        close(w);
        let mut f = unsafe_file(r);
        let mut buf = [0u8; 16];
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }
    Ok(SysResult::Ret(pid as i64))
}

/// A pipe with both ends close-on-exec, moved to high descriptor numbers so that it does
/// not take the numbers the guest child will open next.
fn cloexec_pipe() -> Result<(i32, i32), SysResult> {
    let mut fds = [0i32; 2];
    // SAFETY: fds has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(SysResult::host(-1));
    }
    let high = super::fds::hide_runtime_fd;
    Ok((high(fds[0]), high(fds[1])))
}

fn close(fd: i32) {
    // SAFETY: closes a descriptor this module opened.
    unsafe { libc::close(fd) };
}

fn unsafe_file(fd: i32) -> std::fs::File {
    use std::os::fd::FromRawFd;
    // SAFETY: `fd` is the read end of our own pipe, owned by the File from here on.
    unsafe { std::fs::File::from_raw_fd(fd) }
}

/// clone3(args, size): not implemented; glibc falls back to clone.
fn clone3(_p: &mut Process, _a: [u64; 6]) -> Sys {
    fail(libc::ENOSYS)
}

/// Linux MAX_ARG_STRLEN.
const MAX_ARG_STRLEN: usize = 32 * 4096;
/// Total size of argv + envp we accept (Linux: a quarter of the stack limit, 2 MiB here).
const MAX_ARGS_TOTAL: usize = 2 << 20;

/// Reads a NULL-terminated guest array of string pointers (argv, envp).
fn read_strings(
    p: &mut Process,
    mut addr: u64,
    total: &mut usize,
) -> Result<Vec<Vec<u8>>, SysResult> {
    let mut out = Vec::new();
    if addr == 0 {
        return Ok(out);
    }
    loop {
        let ptr = p
            .mem
            .slice(addr, 8)
            .map(|s| u64::from_le_bytes(s.try_into().expect("8")))
            .map_err(SysResult::from)?;
        if ptr == 0 {
            return Ok(out);
        }
        let s = match p.mem.read_cstr(ptr, MAX_ARG_STRLEN - 1) {
            Ok(s) => s,
            Err(_) if p.mem.slice(ptr, MAX_ARG_STRLEN as u64).is_ok() => return fail(libc::E2BIG),
            Err(_) => return fail(libc::EFAULT),
        };
        *total += s.len() + 1 + 8;
        if *total > MAX_ARGS_TOTAL {
            return fail(libc::E2BIG);
        }
        out.push(s);
        addr += 8;
    }
}

/// Linux BINPRM_BUF_SIZE: how much of a `#!` line the kernel looks at.
const BINPRM_BUF_SIZE: usize = 256;

/// What an executable file is.
#[derive(Debug, PartialEq, Eq)]
pub enum ExecKind {
    /// An ELF the emulator can load.
    Elf,
    /// A `#!` script: interpreter and optional argument.
    Script(Vec<u8>, Option<Vec<u8>>),
    /// An AOT image (an x86-64 relocatable object): host code, which a guest may not run;
    /// only the image this process runs may be re-executed (see [`do_execve`]).
    Image,
}

/// Classifies the start of an executable like the kernel's binfmt handlers: an AArch64
/// ELF, a `#!` script, or -ENOEXEC.
pub fn exec_kind(head: &[u8]) -> Result<ExecKind, SysResult> {
    if let Some(rest) = head.strip_prefix(b"#!") {
        let (line, complete) = match rest.iter().position(|b| *b == b'\n') {
            Some(n) => (&rest[..n], true),
            None => (rest, head.len() < BINPRM_BUF_SIZE),
        };
        let is_ws = |b: &u8| *b == b' ' || *b == b'\t';
        let line: &[u8] = {
            let s = line.iter().position(|b| !is_ws(b)).unwrap_or(line.len());
            let e = line.iter().rposition(|b| !is_ws(b)).map_or(s, |e| e + 1);
            &line[s..e.max(s)]
        };
        let name_end = line.iter().position(is_ws).unwrap_or(line.len());
        if line.is_empty() || (!complete && name_end == line.len()) {
            // No interpreter, or its name may be truncated.
            return fail(libc::ENOEXEC);
        }
        let interp = line[..name_end].to_vec();
        let arg = line[name_end..]
            .iter()
            .position(|b| !is_ws(b))
            .map(|s| line[name_end + s..].to_vec());
        return Ok(ExecKind::Script(interp, arg));
    }
    if head.len() >= 4 && &head[..4] == b"\x7fELF" {
        // An AOT image (an x86-64 relocatable object from `vmc translate`) holds host code.
        // The kernel refuses an ET_REL object with ENOEXEC (so does qemu-user, which hands
        // the guest's execve to the host kernel); the caller decides.
        if vmc_compiler::aot::image::Image::looks_like_image(head) {
            return Ok(ExecKind::Image);
        }
        if head.len() < 64 || crate::loader::check_elf(head).is_err() {
            return fail(libc::ENOEXEC);
        }
        return Ok(ExecKind::Elf);
    }
    fail(libc::ENOEXEC)
}

/// Host path of a guest program path.
fn program_host_path(p: &Process, guest: &[u8]) -> PathBuf {
    if is_proc_self_exe(guest) {
        p.exe.clone()
    } else {
        p.host_path(guest)
    }
}

/// Checks a host program file like the kernel's open_exec: exists (ENOENT...), regular
/// file (EACCES), executable (EACCES); returns its first bytes.
fn open_exec(path: &Path) -> Result<Vec<u8>, SysResult> {
    let err = |e: std::io::Error| SysResult::err(e.raw_os_error().unwrap_or(libc::ENOENT));
    let md = std::fs::metadata(path).map_err(err)?;
    if !md.is_file() {
        return fail(libc::EACCES);
    }
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| SysResult::err(libc::ENOENT))?;
    // SAFETY: valid C string.
    if unsafe { libc::access(c.as_ptr(), libc::X_OK) } != 0 {
        return Err(SysResult::host(-1));
    }
    let mut f = std::fs::File::open(path).map_err(err)?;
    let mut head = vec![0u8; BINPRM_BUF_SIZE];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(err(e)),
        }
    }
    head.truncate(n);
    Ok(head)
}

/// Whether the image at `path` is the one this process runs (same signer and signature,
/// hence the same contents): the guest re-executing itself.
fn is_own_image(p: &Process, path: &Path) -> bool {
    use std::os::unix::fs::FileExt;
    let Some(own) = &p.running_image else {
        return false;
    };
    let want = own.trailer();
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let Ok(len) = f.metadata().map(|m| m.len()) else {
        return false;
    };
    let mut tail = vec![0u8; want.len()];
    len >= want.len() as u64
        && f.read_exact_at(&mut tail, len - want.len() as u64).is_ok()
        && tail == want
}

/// A memory file holding the guest environment `envp` (each entry NUL-terminated), for
/// the new vmrun's `--guest-env-fd`: the environment is the guest's business, so it goes
/// neither into the new vmrun's own environment (where LD_PRELOAD, RUST_LOG or VMC_* would
/// act on the host process) nor into its argv (where each entry would cost an extra
/// argument and the host's argv limit would be reached before the guest's). Close-on-exec
/// until [`do_execve`] clears that just before its execve.
fn env_memfd(envp: &[Vec<u8>]) -> Result<OwnedFd, SysResult> {
    // SAFETY: a valid C string name; the result is checked.
    let fd = unsafe { libc::memfd_create(c"vmrun-guest-env".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(SysResult::host(-1));
    }
    // SAFETY: a fresh fd that we own alone.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut f = std::fs::File::from(fd);
    let mut data = Vec::with_capacity(envp.iter().map(|e| e.len() + 1).sum());
    for e in envp {
        data.extend_from_slice(e);
        data.push(0);
    }
    f.write_all(&data)
        .map_err(|e| SysResult::err(e.raw_os_error().unwrap_or(libc::ENOMEM)))?;
    Ok(f.into())
}

/// What the new vmrun gets besides the program and its argv.
pub struct ExecExtras<'a> {
    /// Sysroot (`-L`).
    pub sysroot: Option<&'a Path>,
    /// The fd of the guest environment ([`env_memfd`]).
    pub env_fd: i32,
    /// The program is the image this process runs: its identity, which the new vmrun
    /// checks again (and trusts its signer, which this process trusted).
    pub own_image: Option<&'a vmc_compiler::aot::image::ImageId>,
}

/// The host argv that makes a new vmrun run `program` with the guest argv `argv`, as a
/// guest program (`--guest-exec`: never an image, except the one this process runs) whose
/// environment is read from `extras.env_fd`. Every guest string is one argument of its own
/// (never glued to an option, which could push it past the kernel's MAX_ARG_STRLEN).
pub fn vmrun_argv(program: &Path, argv: &[Vec<u8>], extras: &ExecExtras) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = vec![
        b"vmrun".to_vec(),
        b"--guest-exec".to_vec(),
        b"--guest-env-fd".to_vec(),
        extras.env_fd.to_string().into_bytes(),
    ];
    if let Some(id) = extras.own_image {
        v.push(b"--guest-image".to_vec());
        v.push(id.signature_hex().into_bytes());
        v.push(b"--trust-key".to_vec());
        v.push(id.signer.hex().into_bytes());
    }
    v.push(b"--argv0".to_vec());
    v.push(argv.first().cloned().unwrap_or_default());
    let sysroot = extras.sysroot;
    if let Some(root) = sysroot {
        v.push(b"-L".to_vec());
        v.push(root.as_os_str().as_bytes().to_vec());
    }
    v.push(b"--".to_vec());
    v.push(program.as_os_str().as_bytes().to_vec());
    v.extend(argv.iter().skip(1).cloned());
    v
}

/// The common part of execve and execveat once the guest path is known.
fn do_execve(p: &mut Process, guest_path: Vec<u8>, argv_addr: u64, envp_addr: u64) -> Sys {
    let mut total = 0;
    let mut argv = read_strings(p, argv_addr, &mut total)?;
    let envp = read_strings(p, envp_addr, &mut total)?;
    if argv.is_empty() {
        // Linux 5.18+: an empty argv gets an empty argv[0].
        argv.push(Vec::new());
    }
    let mut path = guest_path;
    let mut host_prog = program_host_path(p, &path);
    let mut own_image = None;
    // Scripts: the kernel re-runs the search on the interpreter (at most 4 levels deep).
    for depth in 0.. {
        let head = open_exec(&host_prog)?;
        match exec_kind(&head)? {
            ExecKind::Elf => break,
            // A guest re-executing the image it runs from (multi-call programs such as
            // busybox do) gets it again; any other image is host code: refused as the
            // kernel refuses a relocatable object.
            ExecKind::Image if is_own_image(p, &host_prog) => {
                own_image = p.running_image.clone();
                break;
            }
            ExecKind::Image => return fail(libc::ENOEXEC),
            ExecKind::Script(interp, arg) => {
                if depth >= 4 {
                    return fail(libc::ELOOP);
                }
                let mut new = vec![interp.clone()];
                new.extend(arg);
                new.push(path);
                new.extend(argv.into_iter().skip(1));
                argv = new;
                path = interp;
                host_prog = program_host_path(p, &path);
            }
        }
    }
    let env_fd = env_memfd(&envp)?;
    let extras = ExecExtras {
        sysroot: p.sysroot.as_deref(),
        env_fd: env_fd.as_raw_fd(),
        own_image: own_image.as_ref(),
    };
    let host_argv = vmrun_argv(&host_prog, &argv, &extras);
    let cstrs = |v: &[Vec<u8>]| -> Result<Vec<CString>, SysResult> {
        v.iter()
            .map(|s| CString::new(s.clone()).map_err(|_| SysResult::err(libc::EINVAL)))
            .collect()
    };
    // The new emulator runs in the user's own environment, untouched by the guest.
    let host_env: Vec<Vec<u8>> = std::env::vars_os()
        .map(|(k, v)| {
            let mut e = k.as_bytes().to_vec();
            e.push(b'=');
            e.extend_from_slice(v.as_bytes());
            e
        })
        .collect();
    let (hargv, henv) = (cstrs(&host_argv)?, cstrs(&host_env)?);
    let mut pa: Vec<*const libc::c_char> = hargv.iter().map(|s| s.as_ptr()).collect();
    pa.push(std::ptr::null());
    let mut pe: Vec<*const libc::c_char> = henv.iter().map(|s| s.as_ptr()).collect();
    pe.push(std::ptr::null());
    // The blocked mask survives exec; the new emulator reads it (and SIG_IGN dispositions)
    // back as the guest's initial state.
    signal::sync_host_mask(p);
    if log::log_enabled!(log::Level::Debug) {
        let shown: Vec<_> = host_argv
            .iter()
            .map(|a| String::from_utf8_lossy(a))
            .collect();
        log::debug!("execve {:?} as {shown:?}", String::from_utf8_lossy(&path));
    }
    // The new emulator does not record: save what this one recorded.
    if let Some(r) = &p.profile {
        if let Err(e) = r.write() {
            eprintln!("vmrun: {e}");
        }
    }
    // The environment file passes to the new emulator (and is closed if execve fails).
    // SAFETY: fcntl on our own open fd.
    if unsafe { libc::fcntl(env_fd.as_raw_fd(), libc::F_SETFD, 0) } != 0 {
        return Err(SysResult::host(-1));
    }
    super::fds::before_exec(p);
    // SAFETY: NULL-terminated arrays of valid C strings that outlive the call.
    let r = unsafe { libc::execve(c"/proc/self/exe".as_ptr(), pa.as_ptr(), pe.as_ptr()) };
    super::fds::after_failed_exec();
    host(r as libc::c_long)
}

/// execve(path, argv, envp).
fn execve(p: &mut Process, a: [u64; 6]) -> Sys {
    let path = read_path(p, a[0])?;
    if path.is_empty() {
        return fail(libc::ENOENT);
    }
    do_execve(p, path, a[1], a[2])
}

const AT_FDCWD: i32 = -100;
const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
const AT_EMPTY_PATH: u64 = 0x1000;

/// execveat(dirfd, path, argv, envp, flags).
fn execveat(p: &mut Process, a: [u64; 6]) -> Sys {
    let (dirfd, flags) = (a[0] as i32, a[4]);
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return fail(libc::EINVAL);
    }
    let path = read_path(p, a[1])?;
    let guest = if path.is_empty() {
        if flags & AT_EMPTY_PATH == 0 {
            return fail(libc::ENOENT);
        }
        format!("/proc/self/fd/{dirfd}").into_bytes()
    } else if path[0] == b'/' || dirfd == AT_FDCWD {
        path
    } else {
        let mut g = format!("/proc/self/fd/{dirfd}/").into_bytes();
        g.extend_from_slice(&path);
        g
    };
    if flags & AT_SYMLINK_NOFOLLOW != 0 {
        let hp = p.host_path(&guest);
        if hp
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink())
        {
            return fail(libc::ELOOP);
        }
    }
    do_execve(p, guest, a[2], a[3])
}

/// `sizeof(struct rusage)`: the same 144 bytes on arm64 and x86-64.
const RUSAGE_SIZE: usize = 144;

/// wait4(pid, wstatus, options, rusage): the children are host processes.
fn wait4(p: &mut Process, a: [u64; 6]) -> Sys {
    let (pid, status_ptr, options, ru_ptr) = (a[0] as i32, a[1], a[2] as i32, a[3]);
    let mut status: libc::c_int = 0;
    let mut ru = [0u64; RUSAGE_SIZE / 8];
    // SAFETY: host buffers of the right sizes.
    let r = unsafe {
        libc::syscall(
            libc::SYS_wait4,
            pid as libc::c_long,
            &mut status as *mut libc::c_int,
            options as libc::c_long,
            if ru_ptr != 0 {
                ru.as_mut_ptr()
            } else {
                std::ptr::null_mut()
            },
        )
    };
    if r > 0 {
        if status_ptr != 0 {
            write_u32(p, status_ptr, status as u32)?;
        }
        if ru_ptr != 0 {
            let b: Vec<u8> = ru.iter().flat_map(|w| w.to_le_bytes()).collect();
            write_bytes(p, ru_ptr, &b)?;
        }
    }
    host(r)
}

/// waitid(idtype, id, infop, options, rusage): siginfo (SIGCHLD members) and rusage have
/// the same layout on both architectures.
fn waitid(p: &mut Process, a: [u64; 6]) -> Sys {
    let (idtype, id, infop, options, ru_ptr) = (a[0] as i32, a[1] as i32, a[2], a[3] as i32, a[4]);
    let mut info = [0u64; 16];
    let mut ru = [0u64; RUSAGE_SIZE / 8];
    // SAFETY: host buffers of the right sizes.
    let r = unsafe {
        libc::syscall(
            libc::SYS_waitid,
            idtype as libc::c_long,
            id as libc::c_long,
            if infop != 0 {
                info.as_mut_ptr()
            } else {
                std::ptr::null_mut()
            },
            options as libc::c_long,
            if ru_ptr != 0 {
                ru.as_mut_ptr()
            } else {
                std::ptr::null_mut()
            },
        )
    };
    if r == 0 {
        if infop != 0 {
            let b: Vec<u8> = info.iter().flat_map(|w| w.to_le_bytes()).collect();
            write_bytes(p, infop, &b)?;
        }
        if ru_ptr != 0 {
            let b: Vec<u8> = ru.iter().flat_map(|w| w.to_le_bytes()).collect();
            write_bytes(p, ru_ptr, &b)?;
        }
    }
    host(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_executables() {
        assert_eq!(
            exec_kind(b"#!/bin/sh\necho"),
            Ok(ExecKind::Script(b"/bin/sh".to_vec(), None))
        );
        assert_eq!(
            exec_kind(b"#! /usr/bin/env  python3 -u \n"),
            Ok(ExecKind::Script(
                b"/usr/bin/env".to_vec(),
                Some(b"python3 -u".to_vec())
            ))
        );
        assert_eq!(exec_kind(b"#!\n"), Err(SysResult::err(libc::ENOEXEC)));
        assert_eq!(
            exec_kind(b"#!/bin/sh"),
            Ok(ExecKind::Script(b"/bin/sh".to_vec(), None))
        );
        let long = [b"#!/".as_slice(), &[b'a'; 300]].concat();
        assert_eq!(exec_kind(&long[..256]), Err(SysResult::err(libc::ENOEXEC)));
        assert_eq!(
            exec_kind(b"\x7fELF\x02\x01"),
            Err(SysResult::err(libc::ENOEXEC))
        );
        assert_eq!(exec_kind(b"plain text"), Err(SysResult::err(libc::ENOEXEC)));
        let elf = include_bytes!("../../../vmrun/demo.elf");
        assert_eq!(exec_kind(&elf[..256]), Ok(ExecKind::Elf));
        // An AOT image starts as an x86-64 relocatable object: host code, never a guest's.
        let mut image = elf[..256].to_vec();
        image[16..18].copy_from_slice(&1u16.to_le_bytes());
        image[18..20].copy_from_slice(&62u16.to_le_bytes());
        assert_eq!(exec_kind(&image), Ok(ExecKind::Image));
    }

    #[test]
    fn guest_environment_goes_to_a_memory_file_exactly() {
        use std::os::unix::fs::FileExt;
        let env = vec![
            b"A=1".to_vec(),
            b"NOEQUALS".to_vec(),
            Vec::new(),
            b"X=a=b".to_vec(),
        ];
        let fd = env_memfd(&env).unwrap();
        let f = std::fs::File::from(fd);
        let mut data = vec![0u8; 64];
        let n = f.read_at(&mut data, 0).unwrap();
        assert_eq!(&data[..n], b"A=1\0NOEQUALS\0\0X=a=b\0");
    }

    #[test]
    fn vmrun_command_line() {
        let argv = vec![b"-sh".to_vec(), b"-c".to_vec(), b"echo".to_vec()];
        let extras = ExecExtras {
            sysroot: Some(Path::new("/sysroot")),
            env_fd: 5,
            own_image: None,
        };
        let v = vmrun_argv(Path::new("/bin/busybox"), &argv, &extras);
        let v: Vec<&[u8]> = v.iter().map(|s| s.as_slice()).collect();
        assert_eq!(
            v,
            [
                &b"vmrun"[..],
                b"--guest-exec",
                b"--guest-env-fd",
                b"5",
                b"--argv0",
                b"-sh",
                b"-L",
                b"/sysroot",
                b"--",
                b"/bin/busybox",
                b"-c",
                b"echo"
            ]
        );
    }

    #[test]
    fn exec_errors_and_threads() {
        use crate::syscalls::guest::testing::*;
        let mut p = process();
        put_str(&mut p, SCRATCH, b"/nonexistent/prog");
        assert_eq!(call(&mut p, 221, &[SCRATCH, 0, 0]), err(libc::ENOENT));
        put_str(&mut p, SCRATCH, b"/");
        assert_eq!(call(&mut p, 221, &[SCRATCH, 0, 0]), err(libc::EACCES));
        let d = temp_dir("exec");
        let f = d.join("text");
        std::fs::write(&f, "just text\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        put_str(&mut p, SCRATCH, f.as_os_str().as_bytes());
        assert_eq!(call(&mut p, 221, &[SCRATCH, 0, 0]), err(libc::ENOEXEC));
        std::fs::write(&f, "#!/nonexistent/interp\n").unwrap();
        assert_eq!(call(&mut p, 221, &[SCRATCH, 0, 0]), err(libc::ENOENT));
        assert_eq!(call(&mut p, 221, &[8, 0, 0]), err(libc::EFAULT));
        // Threads are refused; clone3 is ENOSYS so that glibc falls back to clone.
        assert_eq!(
            call(&mut p, 220, &[0x3d0f00, 0, 0, 0, 0]),
            err(libc::ENOSYS)
        );
        assert_eq!(call(&mut p, 435, &[0, 0]), err(libc::ENOSYS));
        let _ = std::fs::remove_dir_all(d);
    }
}
