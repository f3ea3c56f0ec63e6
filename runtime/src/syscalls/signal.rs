//! Signals: rt_sigaction, rt_sigprocmask, rt_sigpending, sigaltstack, kill, tkill, tgkill.
//!
//! Dispositions are recorded for the guest in `Process::sigactions` (never installed on
//! the host). Signal-handler delivery is not implemented yet: a signal the process sends to
//! itself either terminates it (default action "terminate"/"core", or a guest handler for
//! such a signal), or is discarded (ignored, default-ignore, or stop/continue signals). A
//! blocked signal is kept pending and acted upon when rt_sigprocmask unblocks it (glibc's
//! raise() blocks all signals around tgkill).

use super::guest::{fail, host, read_bytes, read_u64, sys, write_bytes, write_u64, Sys};
use super::{SysResult, Syscall};
use crate::process::Process;

/// This family's syscalls.
pub const TABLE: &[Syscall] = &[
    sys!(129, "kill", kill),
    sys!(130, "tkill", tkill),
    sys!(131, "tgkill", tgkill),
    sys!(132, "sigaltstack", sigaltstack),
    sys!(134, "rt_sigaction", rt_sigaction),
    sys!(135, "rt_sigprocmask", rt_sigprocmask),
    sys!(136, "rt_sigpending", rt_sigpending),
];

/// Highest signal number.
pub const NSIG: i32 = 64;
const SIGKILL: i32 = 9;
const SIGSTOP: i32 = 19;
const SIGABRT: i32 = 6;
const SIG_DFL: u64 = 0;
const SIG_IGN: u64 = 1;

fn bit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}

/// Default action of a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultAction {
    /// Terminate (with or without core).
    Terminate,
    /// Ignore (SIGCHLD, SIGURG, SIGWINCH) or continue (SIGCONT).
    Ignore,
    /// Stop (SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU).
    Stop,
}

/// Linux default action of `sig` (1..=64; real-time signals terminate).
pub fn default_action(sig: i32) -> DefaultAction {
    match sig {
        17 | 18 | 23 | 28 => DefaultAction::Ignore, // SIGCHLD SIGCONT SIGURG SIGWINCH
        19..=22 => DefaultAction::Stop,             // SIGSTOP SIGTSTP SIGTTIN SIGTTOU
        _ => DefaultAction::Terminate,
    }
}

/// What happens when `sig` is delivered to the guest now.
fn act(p: &Process, sig: i32) -> SysResult {
    let handler = p.sigactions[sig as usize][0];
    if sig == SIGKILL || sig == SIGABRT && handler != SIG_IGN {
        // SIGABRT with a guest handler: the handler cannot run yet (no delivery), and
        // abort() would re-raise with SIG_DFL after it anyway.
        return SysResult::Kill(sig);
    }
    let da = default_action(sig);
    match handler {
        SIG_IGN => SysResult::Ret(0),
        SIG_DFL => match da {
            DefaultAction::Terminate => SysResult::Kill(sig),
            // Stopping is not emulated: the process just continues.
            DefaultAction::Ignore | DefaultAction::Stop => SysResult::Ret(0),
        },
        // A guest handler: delivery is not implemented yet, so a signal whose default
        // action terminates still terminates; others are discarded.
        _ => match da {
            DefaultAction::Terminate => SysResult::Kill(sig),
            _ => SysResult::Ret(0),
        },
    }
}

/// Sends `sig` to the emulated process itself: acted upon now, or left pending if blocked.
pub fn send_self(p: &mut Process, sig: i32) -> SysResult {
    if sig == 0 {
        return SysResult::Ret(0);
    }
    if sig != SIGKILL && sig != SIGSTOP && p.sys.sigmask & bit(sig) != 0 {
        // A blocked, ignored signal is still queued until unblocked (Linux sig_ignored()).
        p.sys.sigpending |= bit(sig);
        return SysResult::Ret(0);
    }
    act(p, sig)
}

/// Acts on pending signals that are no longer blocked (lowest number first, as Linux).
fn deliver_pending(p: &mut Process) -> SysResult {
    while let Some(sig) = (1..=NSIG).find(|s| p.sys.sigpending & !p.sys.sigmask & bit(*s) != 0) {
        p.sys.sigpending &= !bit(sig);
        if let r @ SysResult::Kill(_) = act(p, sig) {
            return r;
        }
    }
    SysResult::Ret(0)
}

fn valid_sig(sig: i32) -> bool {
    (0..=NSIG).contains(&sig)
}

fn own_pid() -> i32 {
    std::process::id() as i32
}

fn own_tid() -> i32 {
    // SAFETY: no arguments.
    unsafe { libc::gettid() }
}

fn kill(p: &mut Process, a: [u64; 6]) -> Sys {
    let (pid, sig) = (a[0] as i32, a[1] as i32);
    if !valid_sig(sig) {
        return fail(libc::EINVAL);
    }
    // SAFETY: no arguments.
    let pgrp = unsafe { libc::getpgrp() };
    if pid == own_pid() || pid == 0 || pid == -pgrp {
        // Our process (group): the only member we model is ourselves.
        return Ok(send_self(p, sig));
    }
    if pid == -1 {
        // "Every process we may signal": never forwarded to the host from a sandboxed guest.
        // Linux excludes the caller itself, so nothing observable happens to the guest.
        return Ok(SysResult::Ret(0));
    }
    // Another host process (or process group): forwarded, as qemu-user does.
    // SAFETY: no pointers.
    host(unsafe { libc::syscall(libc::SYS_kill, pid as libc::c_long, sig as libc::c_long) })
}

fn tkill(p: &mut Process, a: [u64; 6]) -> Sys {
    let (tid, sig) = (a[0] as i32, a[1] as i32);
    if tid <= 0 || !valid_sig(sig) {
        return fail(libc::EINVAL);
    }
    if tid == own_tid() {
        return Ok(send_self(p, sig));
    }
    // SAFETY: no pointers.
    host(unsafe { libc::syscall(libc::SYS_tkill, tid as libc::c_long, sig as libc::c_long) })
}

fn tgkill(p: &mut Process, a: [u64; 6]) -> Sys {
    let (tgid, tid, sig) = (a[0] as i32, a[1] as i32, a[2] as i32);
    if tgid <= 0 || tid <= 0 || !valid_sig(sig) {
        return fail(libc::EINVAL);
    }
    if tgid == own_pid() && tid == own_tid() {
        return Ok(send_self(p, sig));
    }
    // SAFETY: no pointers.
    host(unsafe {
        libc::syscall(
            libc::SYS_tgkill,
            tgid as libc::c_long,
            tid as libc::c_long,
            sig as libc::c_long,
        )
    })
}

/// rt_sigaction(sig, act, oact, sigsetsize). The AArch64 kernel struct sigaction is
/// { sa_handler u64, sa_flags u64, sa_restorer u64, sa_mask u64 }, stored as is.
fn rt_sigaction(p: &mut Process, a: [u64; 6]) -> Sys {
    let (sig, new, old, size) = (a[0] as i32, a[1], a[2], a[3]);
    if size != 8 || !(1..=NSIG).contains(&sig) {
        return fail(libc::EINVAL);
    }
    let new_act = if new != 0 {
        let b = read_bytes(p, new, 32)?;
        let w = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().expect("8"));
        Some([w(0), w(1), w(2), w(3) & !(bit(SIGKILL) | bit(SIGSTOP))])
    } else {
        None
    };
    if new_act.is_some() && (sig == SIGKILL || sig == SIGSTOP) {
        return fail(libc::EINVAL);
    }
    if old != 0 {
        let cur = p.sigactions[sig as usize];
        let b: Vec<u8> = cur.iter().flat_map(|w| w.to_le_bytes()).collect();
        write_bytes(p, old, &b)?;
    }
    if let Some(n) = new_act {
        p.sigactions[sig as usize] = n;
        if n[0] == SIG_IGN || (n[0] == SIG_DFL && default_action(sig) != DefaultAction::Terminate) {
            // Setting a disposition to ignore discards pending instances (Linux).
            p.sys.sigpending &= !bit(sig);
        }
    }
    Ok(SysResult::Ret(0))
}

const SIG_BLOCK: u64 = 0;
const SIG_UNBLOCK: u64 = 1;
const SIG_SETMASK: u64 = 2;

fn rt_sigprocmask(p: &mut Process, a: [u64; 6]) -> Sys {
    let (how, set, old, size) = (a[0], a[1], a[2], a[3]);
    if size != 8 {
        return fail(libc::EINVAL);
    }
    let new = if set != 0 {
        Some(read_u64(p, set)?)
    } else {
        None
    };
    if new.is_some() && how > SIG_SETMASK {
        return fail(libc::EINVAL);
    }
    if old != 0 {
        write_u64(p, old, p.sys.sigmask)?;
    }
    if let Some(s) = new {
        let m = p.sys.sigmask;
        let m = match how {
            SIG_BLOCK => m | s,
            SIG_UNBLOCK => m & !s,
            _ => s,
        };
        p.sys.sigmask = m & !(bit(SIGKILL) | bit(SIGSTOP));
        return Ok(deliver_pending(p));
    }
    Ok(SysResult::Ret(0))
}

fn rt_sigpending(p: &mut Process, a: [u64; 6]) -> Sys {
    if a[1] > 8 {
        return fail(libc::EINVAL);
    }
    let v = p.sys.sigpending & p.sys.sigmask;
    write_bytes(p, a[0], &v.to_le_bytes()[..a[1] as usize])?;
    Ok(SysResult::Ret(0))
}

const SS_ONSTACK: u32 = 1;
const SS_DISABLE: u32 = 2;
const SS_AUTODISARM: u32 = 1 << 31;
/// AArch64 MINSIGSTKSZ.
const MINSIGSTKSZ: u64 = 5120;

/// sigaltstack(ss, old_ss); stack_t is { void *ss_sp; int ss_flags; size_t ss_size } (24
/// bytes) on AArch64.
fn sigaltstack(p: &mut Process, a: [u64; 6]) -> Sys {
    let new = if a[0] != 0 {
        let b = read_bytes(p, a[0], 24)?;
        let sp = u64::from_le_bytes(b[..8].try_into().expect("8"));
        let flags = u32::from_le_bytes(b[8..12].try_into().expect("4"));
        let size = u64::from_le_bytes(b[16..].try_into().expect("8"));
        let mode = flags & !SS_AUTODISARM;
        if mode != 0 && mode != SS_DISABLE && mode != SS_ONSTACK {
            return fail(libc::EINVAL);
        }
        if mode == SS_DISABLE {
            Some(None)
        } else {
            if size < MINSIGSTKSZ {
                return fail(libc::ENOMEM);
            }
            Some(Some((sp, flags & SS_AUTODISARM, size)))
        }
    } else {
        None
    };
    if a[1] != 0 {
        let (sp, flags, size) = p.sys.altstack.unwrap_or((0, SS_DISABLE, 0));
        let mut b = [0u8; 24];
        b[..8].copy_from_slice(&sp.to_le_bytes());
        b[8..12].copy_from_slice(&flags.to_le_bytes());
        b[16..].copy_from_slice(&size.to_le_bytes());
        write_bytes(p, a[1], &b)?;
    }
    if let Some(n) = new {
        p.sys.altstack = n;
    }
    Ok(SysResult::Ret(0))
}

#[cfg(test)]
mod tests {
    use super::super::guest::testing::*;
    use super::*;

    fn set_action(p: &mut Process, sig: u64, handler: u64) -> SysResult {
        let a: Vec<u8> = [handler, 0u64, 0, 0]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        p.mem
            .slice_mut(SCRATCH + 0x100, 32)
            .unwrap()
            .copy_from_slice(&a);
        call(p, 134, &[sig, SCRATCH + 0x100, 0, 8])
    }

    #[test]
    fn sigaction_store_and_return() {
        let mut p = process();
        let act: Vec<u8> = [0x400123u64, 0x0400_0004, 0x400999, 1 << 9]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        p.mem.slice_mut(SCRATCH, 32).unwrap().copy_from_slice(&act);
        assert_eq!(call(&mut p, 134, &[10, SCRATCH, 0, 8]), SysResult::Ret(0));
        assert_eq!(
            call(&mut p, 134, &[10, 0, SCRATCH + 0x40, 8]),
            SysResult::Ret(0)
        );
        assert_eq!(get(&mut p, SCRATCH + 0x40, 32), act);
        assert_eq!(p.sigactions[10], [0x400123, 0x0400_0004, 0x400999, 1 << 9]);
        assert_eq!(call(&mut p, 134, &[9, SCRATCH, 0, 8]), err(libc::EINVAL));
        assert_eq!(call(&mut p, 134, &[65, 0, 0, 8]), err(libc::EINVAL));
        assert_eq!(call(&mut p, 134, &[10, SCRATCH, 0, 16]), err(libc::EINVAL));
        assert_eq!(call(&mut p, 134, &[10, 8, 0, 8]), err(libc::EFAULT));
    }

    #[test]
    fn self_signals() {
        let mut p = process();
        let pid = std::process::id() as u64;
        // SAFETY: no arguments.
        let tid = unsafe { libc::gettid() } as u64;
        assert_eq!(call(&mut p, 129, &[pid, 15]), SysResult::Kill(15));
        assert_eq!(call(&mut p, 129, &[pid, 0]), SysResult::Ret(0));
        assert_eq!(call(&mut p, 129, &[pid, 17]), SysResult::Ret(0)); // SIGCHLD: default ignore
        assert_eq!(call(&mut p, 131, &[pid, tid, 28]), SysResult::Ret(0)); // SIGWINCH
        assert_eq!(call(&mut p, 130, &[tid, 11]), SysResult::Kill(11));
        assert_eq!(call(&mut p, 129, &[pid, 99]), err(libc::EINVAL));
        assert_eq!(set_action(&mut p, 15, SIG_IGN), SysResult::Ret(0));
        assert_eq!(call(&mut p, 129, &[pid, 15]), SysResult::Ret(0));
        // A guest handler cannot run yet: terminating signals still terminate.
        assert_eq!(set_action(&mut p, 10, 0x400500), SysResult::Ret(0));
        assert_eq!(call(&mut p, 131, &[pid, tid, 10]), SysResult::Kill(10));
        assert_eq!(set_action(&mut p, 6, 0x400500), SysResult::Ret(0));
        assert_eq!(call(&mut p, 131, &[pid, tid, 6]), SysResult::Kill(6));
        assert_eq!(call(&mut p, 129, &[pid, 9]), SysResult::Kill(9));
    }

    #[test]
    fn blocked_signals_wait_for_unblock() {
        let mut p = process();
        let pid = std::process::id() as u64;
        let all = SCRATCH + 0x200;
        p.mem
            .slice_mut(all, 8)
            .unwrap()
            .copy_from_slice(&u64::MAX.to_le_bytes());
        // raise(): block everything, tgkill, restore.
        assert_eq!(
            call(&mut p, 135, &[SIG_BLOCK, all, SCRATCH + 0x208, 8]),
            SysResult::Ret(0)
        );
        assert_eq!(get(&mut p, SCRATCH + 0x208, 8), 0u64.to_le_bytes());
        assert_eq!(p.sys.sigmask, !(bit(SIGKILL) | bit(SIGSTOP)));
        assert_eq!(call(&mut p, 129, &[pid, 15]), SysResult::Ret(0));
        assert_eq!(call(&mut p, 136, &[SCRATCH + 0x210, 8]), SysResult::Ret(0));
        assert_eq!(get(&mut p, SCRATCH + 0x210, 8), bit(15).to_le_bytes());
        assert_eq!(
            call(&mut p, 135, &[SIG_SETMASK, SCRATCH + 0x208, 0, 8]),
            SysResult::Kill(15)
        );
        assert_eq!(call(&mut p, 135, &[7, all, 0, 8]), err(libc::EINVAL));
        assert_eq!(
            call(&mut p, 135, &[SIG_BLOCK, all, 0, 4]),
            err(libc::EINVAL)
        );
    }

    #[test]
    fn altstack() {
        let mut p = process();
        assert_eq!(call(&mut p, 132, &[0, SCRATCH]), SysResult::Ret(0));
        assert_eq!(
            u32::from_le_bytes(get(&mut p, SCRATCH + 8, 4).try_into().unwrap()),
            SS_DISABLE
        );
        let ss: Vec<u8> = [0x5000_0000u64, 0, 8192]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        p.mem
            .slice_mut(SCRATCH + 0x40, 24)
            .unwrap()
            .copy_from_slice(&ss);
        assert_eq!(call(&mut p, 132, &[SCRATCH + 0x40, 0]), SysResult::Ret(0));
        assert_eq!(call(&mut p, 132, &[0, SCRATCH]), SysResult::Ret(0));
        assert_eq!(get(&mut p, SCRATCH, 24), ss);
        p.mem
            .slice_mut(SCRATCH + 0x50, 8)
            .unwrap()
            .copy_from_slice(&100u64.to_le_bytes());
        assert_eq!(call(&mut p, 132, &[SCRATCH + 0x40, 0]), err(libc::ENOMEM));
    }
}
