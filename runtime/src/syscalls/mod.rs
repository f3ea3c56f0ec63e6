//! The Linux AArch64 system-call layer.
//!
//! Each submodule owns one family of calls and exports a `TABLE` of [`Syscall`] entries
//! (number, name, handler); [`dispatch`] looks the number up in the union of the tables.
//! Handlers read their arguments from x0..x5, convert guest structures to host ones and
//! back (AArch64 and x86-64 layouts differ), and return the raw Linux result: a value, or
//! `-errno` exactly as the kernel would. Unknown numbers return -ENOSYS with a one-time
//! warning naming the call.

use std::sync::OnceLock;

use vmc_compiler::mem::Fault;

use crate::process::Process;

pub mod core;
pub mod fds;
pub mod fs;
pub mod guest;
pub mod info;
pub mod io;
pub mod process_ctl;
pub mod procfs;
pub mod signal;
pub mod state;

/// Outcome of one system call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SysResult {
    /// Return this value in x0 (negative errno for failures).
    Ret(i64),
    /// The process exits with this status (exit_group, or exit of the only thread).
    Exit(i32),
    /// The process is terminated by this signal with the default action.
    Kill(i32),
}

impl SysResult {
    /// `-errno`.
    pub fn err(errno: i32) -> SysResult {
        SysResult::Ret(-(errno as i64))
    }
    /// The result of a host libc call: `-errno` when it returned -1.
    pub fn host(r: i64) -> SysResult {
        if r == -1 {
            SysResult::Ret(
                -(std::io::Error::last_os_error()
                    .raw_os_error()
                    .unwrap_or(libc::EIO) as i64),
            )
        } else {
            SysResult::Ret(r)
        }
    }
}

impl From<Fault> for SysResult {
    /// A bad guest pointer passed to a system call gives EFAULT, as in Linux.
    fn from(_: Fault) -> SysResult {
        SysResult::err(libc::EFAULT)
    }
}

/// Handler signature: the process and the six argument registers.
pub type SysFn = fn(&mut Process, [u64; 6]) -> SysResult;

/// One entry of a syscall table.
#[derive(Clone, Copy)]
pub struct Syscall {
    /// AArch64 (asm-generic) syscall number.
    pub nr: u64,
    /// Name, for traces, statistics and warnings.
    pub name: &'static str,
    /// Implementation.
    pub handler: SysFn,
}

/// Every family's table.
fn tables() -> &'static [&'static [Syscall]] {
    &[
        core::TABLE,
        fs::TABLE,
        io::TABLE,
        info::TABLE,
        signal::TABLE,
        process_ctl::TABLE,
    ]
}

fn lookup() -> &'static [Option<Syscall>] {
    static TABLE: OnceLock<Vec<Option<Syscall>>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = vec![None; 512];
        for s in tables().iter().flat_map(|t| t.iter()) {
            debug_assert!(
                t[s.nr as usize].is_none(),
                "syscall {} defined twice",
                s.name
            );
            t[s.nr as usize] = Some(*s);
        }
        t
    })
}

/// Name of a syscall number, if implemented.
pub fn name(nr: u64) -> Option<&'static str> {
    lookup().get(nr as usize).copied().flatten().map(|s| s.name)
}

/// Every implemented syscall, sorted by number.
pub fn implemented() -> Vec<(u64, &'static str)> {
    lookup().iter().flatten().map(|s| (s.nr, s.name)).collect()
}

/// Performs the system call in x8 with arguments x0..x5, then (as Linux on its way back to
/// user space) delivers pending signals: the result may then be a handler's entry, whose
/// x0 (the signal number) is returned so that the dispatcher's write of x0 keeps it.
pub fn dispatch(p: &mut Process) -> SysResult {
    let nr = p.cpu.x[8];
    let mut args = [
        p.cpu.x[0], p.cpu.x[1], p.cpu.x[2], p.cpu.x[3], p.cpu.x[4], p.cpu.x[5],
    ];
    p.counters.syscalls += 1;
    match lookup().get(nr as usize).copied().flatten() {
        Some(s) => {
            // The guest's descriptor space and /proc/self/mem come before any handler.
            let r = match fds::before(p, nr, &mut args) {
                Some(r) => r,
                None => match procfs::intercept(p, nr, &args) {
                    Some(r) => r,
                    None => {
                        let r = (s.handler)(p, args);
                        procfs::track(p, nr, &args, r);
                        fds::after(p, nr, &args, r)
                    }
                },
            };
            log::trace!(
                "syscall {}({:#x}, {:#x}, {:#x}) = {:?}",
                s.name,
                args[0],
                args[1],
                args[2],
                r
            );
            signal::after_syscall(p, nr, args[0], r)
        }
        None => {
            if p.warned.insert(nr) {
                eprintln!(
                    "vmrun: warning: unsupported syscall {nr}{}, returning ENOSYS",
                    unknown_name(nr)
                );
            }
            signal::after_syscall(p, nr, args[0], SysResult::err(libc::ENOSYS))
        }
    }
}

/// A readable name for a syscall number we do not implement.
fn unknown_name(nr: u64) -> String {
    let known: &[(u64, &str)] = &[
        (198, "socket"),
        (203, "connect"),
        (200, "bind"),
        (242, "accept4"),
        (20, "epoll_create1"),
        (22, "epoll_pwait"),
        (73, "ppoll"),
        (72, "pselect6"),
        (138, "rt_sigqueueinfo"),
        (240, "rt_tgsigqueueinfo"),
    ];
    known
        .iter()
        .find(|k| k.0 == nr)
        .map(|k| format!(" ({})", k.1))
        .unwrap_or_default()
}
