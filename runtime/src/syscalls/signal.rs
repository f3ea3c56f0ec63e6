//! Signals: rt_sigaction, rt_sigprocmask, rt_sigpending, sigaltstack, kill, tkill, tgkill,
//! rt_sigreturn, rt_sigsuspend, rt_sigtimedwait, and delivery to guest handlers.
//!
//! Dispositions are recorded for the guest in `Process::sigactions`. A signal sent to the
//! process itself (kill, tkill, tgkill, raise) is made pending with its siginfo and acted
//! upon when the system call returns, as Linux does on its return to user space: terminate
//! (default action), discard (ignored), or run the guest handler on an arm64 `rt_sigframe`
//! built exactly as `arch/arm64/kernel/signal.c` builds it. Synchronous faults (SIGSEGV,
//! SIGBUS, SIGILL, SIGTRAP) are forced like the kernel's `force_sig_fault`: delivered to a
//! handler, or terminating when blocked, ignored or defaulted.
//!
//! Signals from other host processes (SIGCHLD from children, SIGINT, ...) reach the guest
//! when it has installed a handler for them: a host handler records them and they are
//! delivered at the next system call return (a blocked host call returns EINTR and is
//! restarted after the handler when the guest asked for SA_RESTART).

use std::sync::atomic::{AtomicU64, Ordering};

use vmc_compiler::ir::TrapKind;
use vmc_compiler::mem::Fault;

use super::guest::{fail, host, read_bytes, read_u64, sys, write_bytes, write_u64, Sys};
use super::{SysResult, Syscall};
use crate::exec::{fault_termination, trap_termination, Termination};
use crate::memory::{perm, PAGE};
use crate::process::Process;

/// This family's syscalls.
pub const TABLE: &[Syscall] = &[
    sys!(129, "kill", kill),
    sys!(130, "tkill", tkill),
    sys!(131, "tgkill", tgkill),
    sys!(132, "sigaltstack", sigaltstack),
    sys!(133, "rt_sigsuspend", rt_sigsuspend),
    sys!(134, "rt_sigaction", rt_sigaction),
    sys!(135, "rt_sigprocmask", rt_sigprocmask),
    sys!(136, "rt_sigpending", rt_sigpending),
    sys!(137, "rt_sigtimedwait", rt_sigtimedwait),
    sys!(139, "rt_sigreturn", rt_sigreturn),
];

/// Highest signal number.
pub const NSIG: i32 = 64;
const SIGILL: i32 = 4;
const SIGTRAP: i32 = 5;
const SIGBUS: i32 = 7;
const SIGFPE: i32 = 8;
const SIGKILL: i32 = 9;
const SIGSEGV: i32 = 11;
const SIGPIPE: i32 = 13;
const SIGSTOP: i32 = 19;
const SIG_DFL: u64 = 0;
const SIG_IGN: u64 = 1;

/// sa_flags bits (asm-generic, as on arm64).
const SA_SIGINFO: u64 = 4;
const SA_RESTORER: u64 = 0x0400_0000;
const SA_ONSTACK: u64 = 0x0800_0000;
const SA_RESTART: u64 = 0x1000_0000;
const SA_NODEFER: u64 = 0x4000_0000;
const SA_RESETHAND: u64 = 0x8000_0000;

/// si_code values.
const SI_USER: i32 = 0;
const SI_KERNEL: i32 = 0x80;
const SI_TKILL: i32 = -6;
const SEGV_MAPERR: i32 = 1;
const SEGV_ACCERR: i32 = 2;
const BUS_ADRALN: i32 = 1;
const BUS_ADRERR: i32 = 2;
const ILL_ILLOPC: i32 = 1;
const TRAP_BRKPT: i32 = 1;

/// Signals raised synchronously by an instruction; the kernel dequeues them first.
const SYNC_SIGNALS: u64 = (1 << (SIGILL - 1))
    | (1 << (SIGTRAP - 1))
    | (1 << (SIGBUS - 1))
    | (1 << (SIGFPE - 1))
    | (1 << (SIGSEGV - 1));

fn bit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}

const UNBLOCKABLE: u64 = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1));

/// The siginfo of a signal, for the sources the emulator models.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SigInfo {
    /// si_signo.
    pub signo: i32,
    /// si_errno.
    pub errno: i32,
    /// si_code.
    pub code: i32,
    /// si_pid (kill-type and SIGCHLD layouts).
    pub pid: i32,
    /// si_uid (kill-type and SIGCHLD layouts).
    pub uid: u32,
    /// si_status (SIGCHLD).
    pub status: i32,
    /// si_addr (fault layout), used when `fault` is set.
    pub addr: u64,
    /// Fault layout (si_addr at offset 16) instead of the kill layout (si_pid, si_uid).
    pub fault: bool,
}

impl SigInfo {
    /// A signal sent by this process with kill (SI_USER) or tkill/tgkill (SI_TKILL).
    pub fn sent(signo: i32, code: i32) -> SigInfo {
        // SAFETY: no arguments.
        let uid = unsafe { libc::getuid() };
        SigInfo {
            signo,
            code,
            pid: own_pid(),
            uid,
            ..Default::default()
        }
    }

    /// A synchronous fault at `addr`.
    pub fn fault(signo: i32, code: i32, addr: u64) -> SigInfo {
        SigInfo {
            signo,
            code,
            addr,
            fault: true,
            ..Default::default()
        }
    }

    /// The 128-byte arm64 `siginfo_t` (same layout as x86-64 for these members).
    pub fn to_bytes(&self) -> [u8; 128] {
        let mut b = [0u8; 128];
        b[0..4].copy_from_slice(&self.signo.to_le_bytes());
        b[4..8].copy_from_slice(&self.errno.to_le_bytes());
        b[8..12].copy_from_slice(&self.code.to_le_bytes());
        if self.fault {
            b[16..24].copy_from_slice(&self.addr.to_le_bytes());
        } else {
            b[16..20].copy_from_slice(&self.pid.to_le_bytes());
            b[20..24].copy_from_slice(&self.uid.to_le_bytes());
            if self.signo == libc::SIGCHLD {
                b[24..28].copy_from_slice(&self.status.to_le_bytes());
            }
        }
        b
    }
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

/// Whether a signal would be discarded at generation (Linux `sig_ignored`, unblocked case).
fn ignored(p: &Process, sig: i32) -> bool {
    match p.sigactions[sig as usize][0] {
        SIG_IGN => true,
        // Stopping is not emulated: stop signals are discarded like ignored ones.
        SIG_DFL => default_action(sig) != DefaultAction::Terminate,
        _ => false,
    }
}

/// Sends `sig` to the emulated process itself with kill's siginfo (SI_USER).
pub fn send_self(p: &mut Process, sig: i32) -> SysResult {
    send_self_info(p, SigInfo::sent(sig, SI_USER))
}

/// Generates a signal for the process itself: it becomes pending (one instance per signal
/// number) and is delivered when the current system call returns, or when unblocked.
pub fn send_self_info(p: &mut Process, info: SigInfo) -> SysResult {
    let sig = info.signo;
    if sig == 0 {
        return SysResult::Ret(0);
    }
    if sig == SIGKILL {
        return SysResult::Kill(SIGKILL);
    }
    // Linux discards an ignored signal at once unless it is blocked (then it stays queued
    // until unblocked or until the disposition changes).
    if p.sys.sigmask & bit(sig) == 0 && ignored(p, sig) {
        return SysResult::Ret(0);
    }
    if p.sys.sigpending & bit(sig) == 0 {
        p.sys.sigpending |= bit(sig);
        p.sys.pending_info.retain(|i| i.signo != sig);
        p.sys.pending_info.push(info);
    }
    SysResult::Ret(0)
}

fn take_pending(p: &mut Process, sig: i32) -> SigInfo {
    p.sys.sigpending &= !bit(sig);
    match p.sys.pending_info.iter().position(|i| i.signo == sig) {
        Some(i) => p.sys.pending_info.swap_remove(i),
        None => SigInfo::sent(sig, SI_USER),
    }
}

/// Delivers every pending signal that is not blocked, synchronous ones first, then by
/// number (as Linux's `get_signal` loop): each handler gets its frame, stacked on the
/// previous one. Returns the signal that terminates the process, if any.
pub fn deliver_pending(p: &mut Process) -> Option<i32> {
    loop {
        let ready = p.sys.sigpending & !p.sys.sigmask;
        if ready == 0 {
            return None;
        }
        let pick = if ready & SYNC_SIGNALS != 0 {
            ready & SYNC_SIGNALS
        } else {
            ready
        };
        let sig = pick.trailing_zeros() as i32 + 1;
        let info = take_pending(p, sig);
        if let Some(t) = deliver_one(p, &info) {
            return Some(t);
        }
    }
}

/// Acts on one signal now: nothing (ignored), termination (`Some(sig)`), or the handler.
fn deliver_one(p: &mut Process, info: &SigInfo) -> Option<i32> {
    let sig = info.signo;
    if sig == SIGKILL {
        return Some(SIGKILL);
    }
    let act = p.sigactions[sig as usize];
    match act[0] {
        SIG_IGN => None,
        SIG_DFL => (default_action(sig) == DefaultAction::Terminate).then_some(sig),
        _ => {
            if setup_frame(p, info, act).is_ok() {
                return None;
            }
            // The frame could not be written (bad stack): Linux force_sigsegv().
            if sig == SIGSEGV {
                p.sigactions[SIGSEGV as usize][0] = SIG_DFL;
            }
            force(p, &SigInfo::fault(SIGSEGV, SI_KERNEL, 0))
        }
    }
}

/// Linux `force_sig_info`: a blocked or ignored signal gets the default action and is
/// unblocked, then the signal is acted upon at once.
fn force(p: &mut Process, info: &SigInfo) -> Option<i32> {
    let sig = info.signo;
    let blocked = p.sys.sigmask & bit(sig) != 0;
    if blocked || p.sigactions[sig as usize][0] == SIG_IGN {
        p.sigactions[sig as usize][0] = SIG_DFL;
        p.sys.sigmask &= !bit(sig);
    }
    deliver_one(p, info)
}

/// Post-processing of every system call (the kernel's return to user space): stores the
/// result in x0, then delivers pending signals, which may rewrite every register. An
/// interrupted host call (-EINTR) is restarted after a handler installed with SA_RESTART.
pub fn after_syscall(p: &mut Process, nr: u64, orig_x0: u64, r: SysResult) -> SysResult {
    let SysResult::Ret(v) = r else { return r };
    collect_host_signals(p);
    if p.sys.sigpending & !p.sys.sigmask == 0 {
        if let Some(m) = p.sys.saved_sigmask.take() {
            p.sys.sigmask = m;
        }
        return r;
    }
    p.cpu.x[0] = v as u64;
    if v == -(libc::EINTR as i64) && restartable(nr) {
        let ready = p.sys.sigpending & !p.sys.sigmask;
        let sig = ready.trailing_zeros() as i32 + 1;
        let act = p.sigactions[sig as usize];
        if act[0] > SIG_IGN && act[1] & SA_RESTART != 0 {
            p.cpu.x[0] = orig_x0;
            p.cpu.pc = p.cpu.pc.wrapping_sub(4);
        }
    }
    let term = deliver_pending(p);
    if let Some(m) = p.sys.saved_sigmask.take() {
        p.sys.sigmask = m;
    }
    match term {
        Some(sig) => SysResult::Kill(sig),
        None => SysResult::Ret(p.cpu.x[0] as i64),
    }
}

/// Whether an interrupted call is restarted under SA_RESTART (Linux returns
/// -ERESTARTNOHAND or -ERESTART_RESTARTBLOCK for these instead of -ERESTARTSYS).
fn restartable(nr: u64) -> bool {
    !matches!(nr, 22 | 72 | 73 | 101 | 115 | 133 | 137 | 139)
}

impl Process {
    /// Whether the guest handles SIGSEGV or SIGBUS itself (its handler then needs precise
    /// faults: a load from a page beyond the end of a mapped file raises SIGBUS).
    pub fn handles_segv(&self) -> bool {
        [SIGSEGV, SIGBUS]
            .iter()
            .any(|&s| self.sigactions[s as usize][0] > SIG_IGN)
    }

    /// A block faulted: the signal goes to the guest's handler (`None`: continue at the new
    /// pc) or terminates the process.
    pub fn signal_fault(&mut self, pc: u64, fault: Fault) -> Option<Termination> {
        let (info, esr) = match fault {
            Fault::Segv { addr, write } => {
                let mapped = self.mem.perm(addr) & perm::MAPPED != 0;
                let code = if mapped { SEGV_ACCERR } else { SEGV_MAPERR };
                let dfsc = if mapped { 0x0f } else { 0x07 };
                let esr = (0x24 << 26) | (1 << 25) | (u64::from(write) << 6) | dfsc;
                (SigInfo::fault(SIGSEGV, code, addr), esr)
            }
            Fault::Bus { addr } => (
                SigInfo::fault(SIGBUS, BUS_ADRALN, addr),
                (0x24 << 26) | (1 << 25) | 0x21,
            ),
            // Linux: a data abort the page cache cannot satisfy (synchronous external abort).
            Fault::Unbacked { addr } => (
                SigInfo::fault(SIGBUS, BUS_ADRERR, addr),
                (0x24 << 26) | (1 << 25) | 0x10,
            ),
            Fault::Undefined { insn } => return self.signal_trap(TrapKind::Undefined, pc, insn),
        };
        self.sys.last_fault = (info.addr, esr);
        self.force_sync(info, || fault_termination(pc, fault))
    }

    /// A block trapped (undefined instruction, BRK, fetch fault): as [`Self::signal_fault`].
    pub fn signal_trap(&mut self, kind: TrapKind, pc: u64, insn: u32) -> Option<Termination> {
        let (info, last) = match kind {
            TrapKind::Undefined | TrapKind::PermanentlyUndefined => {
                (SigInfo::fault(SIGILL, ILL_ILLOPC, pc), (0, 0))
            }
            TrapKind::Breakpoint => {
                let esr = (0x3c << 26) | (1 << 25) | u64::from((insn >> 5) & 0xffff);
                (SigInfo::fault(SIGTRAP, TRAP_BRKPT, pc), (0, esr))
            }
            TrapKind::FetchFault => {
                let mapped = self.mem.perm(pc) & perm::MAPPED != 0;
                let code = if mapped { SEGV_ACCERR } else { SEGV_MAPERR };
                let esr = (0x20 << 26) | (1 << 25) | if mapped { 0x0f } else { 0x07 };
                (SigInfo::fault(SIGSEGV, code, pc), (pc, esr))
            }
        };
        self.sys.last_fault = last;
        self.force_sync(info, || trap_termination(kind, pc, insn))
    }

    fn force_sync(
        &mut self,
        info: SigInfo,
        why: impl FnOnce() -> Termination,
    ) -> Option<Termination> {
        let sig = match force(self, &info) {
            None => deliver_pending(self),
            t => t,
        }?;
        if sig == info.signo {
            Some(why())
        } else {
            let what = if sig == SIGSEGV {
                "cannot build a signal frame"
            } else {
                "killed"
            };
            Some(Termination::Signaled {
                signal: sig,
                reason: format!("{what} (signal {sig})"),
            })
        }
    }
}

// ---------------------------------------------------------------------------------------
// The arm64 signal frame.

/// `sizeof(struct rt_sigframe)`: siginfo (128) + ucontext (4560).
pub const FRAME_SIZE: u64 = 4688;
/// Offset of `uc` in the frame.
const UC: usize = 128;
/// Offsets inside the frame of ucontext members.
const UC_STACK: usize = UC + 16;
const UC_SIGMASK: usize = UC + 40;
/// `uc.uc_mcontext` (struct sigcontext, 16-aligned).
const MCTX: usize = UC + 176;
const MC_FAULT: usize = MCTX;
const MC_REGS: usize = MCTX + 8;
const MC_SP: usize = MCTX + 256;
const MC_PC: usize = MCTX + 264;
const MC_PSTATE: usize = MCTX + 272;
const MC_RESERVED: usize = MCTX + 288;
const RESERVED_SIZE: usize = 4096;
const FPSIMD_MAGIC: u32 = 0x4650_8001;
const FPSIMD_SIZE: usize = 528;
const ESR_MAGIC: u32 = 0x4553_5201;
const ESR_SIZE: usize = 16;

fn put(b: &mut [u8], off: usize, v: &[u8]) {
    b[off..off + v.len()].copy_from_slice(v);
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

/// Whether `sp` is on the alternate signal stack (Linux `on_sig_stack`).
fn on_altstack(p: &Process, sp: u64) -> bool {
    match p.sys.altstack {
        Some((ss, flags, size)) if flags & SS_AUTODISARM == 0 => sp > ss && sp - ss <= size,
        _ => false,
    }
}

/// The `stack_t` reported for `sp` (sigaltstack's old_ss, and uc_stack).
fn altstack_report(p: &Process, sp: u64) -> [u8; 24] {
    let (ss, flags, size) = match p.sys.altstack {
        None => (0, SS_DISABLE, 0),
        Some((ss, fl, size)) => (
            ss,
            fl | if on_altstack(p, sp) { SS_ONSTACK } else { 0 },
            size,
        ),
    };
    let mut b = [0u8; 24];
    b[..8].copy_from_slice(&ss.to_le_bytes());
    b[8..12].copy_from_slice(&flags.to_le_bytes());
    b[16..].copy_from_slice(&size.to_le_bytes());
    b
}

/// `mov x8, #139; svc #0`: the vDSO's `__kernel_rt_sigreturn`.
const SIGRETURN_CODE: [u32; 2] = [0xd280_1168, 0xd400_0001];

/// Address of the sigreturn trampoline, mapping it on first use.
fn sigtramp(p: &mut Process) -> Result<u64, ()> {
    if p.sys.sigtramp == 0 {
        let a = p.mem.find_free(PAGE, crate::process::MMAP_TOP).ok_or(())?;
        p.mem.map(a, PAGE, 5).map_err(|_| ())?;
        let code: Vec<u8> = SIGRETURN_CODE
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        p.mem.poke(a, &code).map_err(|_| ())?;
        p.sys.sigtramp = a;
    }
    Ok(p.sys.sigtramp)
}

/// Builds the `rt_sigframe` for `info` with action `act` ({handler, flags, restorer,
/// mask}) and points the registers at the handler (Linux `setup_rt_frame`).
fn setup_frame(p: &mut Process, info: &SigInfo, act: [u64; 4]) -> Result<(), ()> {
    let sig = info.signo;
    let [handler, flags, restorer, sa_mask] = act;
    let sp0 = p.cpu.x[31];
    let uc_stack = altstack_report(p, sp0);
    let mut top = sp0;
    let mut disarm = false;
    if flags & SA_ONSTACK != 0 {
        if let Some((ss, fl, size)) = p.sys.altstack {
            if !on_altstack(p, sp0) {
                top = ss.wrapping_add(size);
                disarm = fl & SS_AUTODISARM != 0;
            }
        }
    }
    let record = top.wrapping_sub(16) & !15;
    let frame = record.wrapping_sub(FRAME_SIZE);
    let tramp = if flags & SA_RESTORER != 0 {
        restorer
    } else {
        sigtramp(p)?
    };

    let mut b = vec![0u8; FRAME_SIZE as usize];
    if flags & SA_SIGINFO != 0 {
        put(&mut b, 0, &info.to_bytes());
    }
    // uc_flags, uc_link = 0.
    put(&mut b, UC_STACK, &uc_stack);
    let uc_mask = p.sys.saved_sigmask.take().unwrap_or(p.sys.sigmask);
    put(&mut b, UC_SIGMASK, &uc_mask.to_le_bytes());
    put(&mut b, MC_FAULT, &p.sys.last_fault.0.to_le_bytes());
    for i in 0..31 {
        put(&mut b, MC_REGS + 8 * i, &p.cpu.x[i].to_le_bytes());
    }
    put(&mut b, MC_SP, &sp0.to_le_bytes());
    put(&mut b, MC_PC, &p.cpu.pc.to_le_bytes());
    put(&mut b, MC_PSTATE, &(p.cpu.nzcv & 0xf000_0000).to_le_bytes());
    let mut off = MC_RESERVED;
    put(&mut b, off, &FPSIMD_MAGIC.to_le_bytes());
    put(&mut b, off + 4, &(FPSIMD_SIZE as u32).to_le_bytes());
    put(&mut b, off + 8, &(p.cpu.fpsr as u32).to_le_bytes());
    put(&mut b, off + 12, &(p.cpu.fpcr as u32).to_le_bytes());
    for i in 0..32 {
        put(&mut b, off + 16 + 16 * i, &p.cpu.v[i].to_le_bytes());
    }
    off += FPSIMD_SIZE;
    if p.sys.last_fault.1 != 0 {
        put(&mut b, off, &ESR_MAGIC.to_le_bytes());
        put(&mut b, off + 4, &(ESR_SIZE as u32).to_le_bytes());
        put(&mut b, off + 8, &p.sys.last_fault.1.to_le_bytes());
        off += ESR_SIZE;
    }
    // The terminating null record {0, 0} is already zero at `off`.
    let _ = off;

    let mut rec = [0u8; 16];
    rec[..8].copy_from_slice(&p.cpu.x[29].to_le_bytes());
    rec[8..].copy_from_slice(&p.cpu.x[30].to_le_bytes());
    if frame > record || !Process::in_space(frame, FRAME_SIZE + 16) {
        return Err(());
    }
    write_bytes(p, record, &rec).map_err(|_| ())?;
    write_bytes(p, frame, &b).map_err(|_| ())?;

    if disarm {
        p.sys.altstack = None;
    }
    p.cpu.x[0] = sig as u64;
    if flags & SA_SIGINFO != 0 {
        p.cpu.x[1] = frame;
        p.cpu.x[2] = frame + UC as u64;
    }
    p.cpu.x[31] = frame;
    p.cpu.x[29] = record;
    p.cpu.x[30] = tramp;
    p.cpu.pc = handler;
    let mut blocked = p.sys.sigmask | sa_mask;
    if flags & SA_NODEFER == 0 {
        blocked |= bit(sig);
    }
    p.sys.sigmask = blocked & !UNBLOCKABLE;
    if flags & SA_RESETHAND != 0 {
        p.sigactions[sig as usize][0] = SIG_DFL;
        sync_host_disposition(sig, SIG_DFL);
    }
    Ok(())
}

/// Reads and validates the frame at `frame` and restores the registers, mask and
/// alternate stack from it (Linux `restore_sigframe` + `restore_altstack`).
fn restore_frame(p: &mut Process, frame: u64) -> Result<(), ()> {
    if !frame.is_multiple_of(16) {
        return Err(());
    }
    let b = read_bytes(p, frame, FRAME_SIZE as usize).map_err(|_| ())?;
    let pstate = u64_at(&b, MC_PSTATE);
    // valid_user_regs(): EL0t, AArch64, D/A/I/F clear.
    if pstate & 0x3df != 0 {
        return Err(());
    }
    let (mut off, limit) = (MC_RESERVED, MC_RESERVED + RESERVED_SIZE);
    let mut fpsimd = None;
    loop {
        if limit - off < 8 || !(off - MC_RESERVED).is_multiple_of(16) {
            return Err(());
        }
        let (magic, size) = (u32_at(&b, off), u32_at(&b, off + 4) as usize);
        if limit - off < size {
            return Err(());
        }
        match magic {
            0 if size == 0 => break,
            FPSIMD_MAGIC if size >= FPSIMD_SIZE && fpsimd.is_none() => fpsimd = Some(off),
            ESR_MAGIC if size >= ESR_SIZE => {}
            _ => return Err(()),
        }
        if size < 16 || !size.is_multiple_of(16) {
            return Err(());
        }
        off += size;
    }
    let fp = fpsimd.ok_or(())?;
    p.sys.sigmask = u64_at(&b, UC_SIGMASK) & !UNBLOCKABLE;
    for i in 0..31 {
        p.cpu.x[i] = u64_at(&b, MC_REGS + 8 * i);
    }
    p.cpu.x[31] = u64_at(&b, MC_SP);
    p.cpu.pc = u64_at(&b, MC_PC);
    p.cpu.nzcv = pstate & 0xf000_0000;
    p.cpu.fpsr = u64::from(u32_at(&b, fp + 8));
    p.cpu.fpcr = u64::from(u32_at(&b, fp + 12));
    for i in 0..32 {
        let o = fp + 16 + 16 * i;
        p.cpu.v[i] = u128::from_le_bytes(b[o..o + 16].try_into().expect("16 bytes"));
    }
    // restore_altstack(): errors other than EFAULT are ignored.
    let ss = u64_at(&b, UC_STACK);
    let flags = u32_at(&b, UC_STACK + 8);
    let size = u64_at(&b, UC_STACK + 16);
    let _ = set_altstack(p, ss, flags, size);
    Ok(())
}

fn rt_sigreturn(p: &mut Process, _a: [u64; 6]) -> Sys {
    let frame = p.cpu.x[31];
    if restore_frame(p, frame).is_err() {
        // arm64_notify_segfault(sp).
        let code = if p.mem.perm(frame) & perm::MAPPED != 0 {
            SEGV_ACCERR
        } else {
            SEGV_MAPERR
        };
        return Ok(match force(p, &SigInfo::fault(SIGSEGV, code, frame)) {
            Some(sig) => SysResult::Kill(sig),
            None => SysResult::Ret(p.cpu.x[0] as i64),
        });
    }
    Ok(SysResult::Ret(p.cpu.x[0] as i64))
}

// ---------------------------------------------------------------------------------------
// Signals from other host processes.

/// Host signals received and not yet handed to the guest (bit `sig - 1`).
static HOST_PENDING: AtomicU64 = AtomicU64::new(0);
/// Per signal: si_code (low 32 bits) and si_pid (high 32 bits) of the last host instance.
static HOST_CODE_PID: [AtomicU64; 65] = [const { AtomicU64::new(0) }; 65];
/// Per signal: si_uid (low 32 bits) and si_status (high 32 bits).
static HOST_UID_STATUS: [AtomicU64; 65] = [const { AtomicU64::new(0) }; 65];
/// The forwardable signals the host currently blocks on the guest's behalf.
static HOST_BLOCKED: AtomicU64 = AtomicU64::new(0);

/// Signals that can come from outside and are passed to the guest: everything but
/// SIGKILL/SIGSTOP, the synchronous fault signals (the emulator's own faults are bugs, not
/// guest signals) and glibc's internal 32/33.
pub fn forwardable(sig: i32) -> bool {
    (1..=NSIG).contains(&sig)
        && !matches!(
            sig,
            SIGILL | SIGTRAP | SIGBUS | SIGFPE | SIGKILL | SIGSEGV | SIGSTOP | 32 | 33
        )
}

extern "C" fn host_handler(sig: libc::c_int, si: *mut libc::siginfo_t, _uc: *mut libc::c_void) {
    if !(1..=NSIG).contains(&sig) {
        return;
    }
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler; the accessors
    // read the kill/SIGCHLD union members, which are plain integers.
    let (code, pid, uid, status) = unsafe {
        let s = &*si;
        let status = if sig == libc::SIGCHLD {
            s.si_status()
        } else {
            0
        };
        (s.si_code, s.si_pid(), s.si_uid(), status)
    };
    HOST_CODE_PID[sig as usize].store(
        code as u32 as u64 | (pid as u32 as u64) << 32,
        Ordering::Relaxed,
    );
    HOST_UID_STATUS[sig as usize]
        .store(uid as u64 | (status as u32 as u64) << 32, Ordering::Relaxed);
    HOST_PENDING.fetch_or(bit(sig), Ordering::SeqCst);
}

/// Makes the host disposition of a forwardable signal follow the guest's: default, ignore,
/// or recorded for delivery to the guest handler (a host write to a broken pipe then kills
/// the emulator by SIGPIPE exactly when it would kill the guest).
pub fn sync_host_disposition(sig: i32, handler: u64) {
    if !forwardable(sig) {
        return;
    }
    // SAFETY: installs a handler that only touches atomics, or a standard disposition.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        libc::sigfillset(&mut sa.sa_mask);
        sa.sa_sigaction = match handler {
            SIG_DFL => libc::SIG_DFL,
            SIG_IGN => libc::SIG_IGN,
            _ => {
                sa.sa_flags = libc::SA_SIGINFO;
                host_handler as *const () as usize
            }
        };
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
}

/// Host-side signal set of the forwardable signals in guest mask `m`.
fn host_set(m: u64) -> libc::sigset_t {
    // SAFETY: sigset manipulation on a local value.
    unsafe {
        let mut s: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut s);
        for sig in (1..=NSIG).filter(|s| m & bit(*s) != 0 && forwardable(*s)) {
            libc::sigaddset(&mut s, sig);
        }
        s
    }
}

/// Blocks on the host the forwardable signals the guest blocks, so that they stay pending
/// in the kernel (and are inherited across fork and execve) as they would for the guest.
pub fn sync_host_mask(p: &Process) {
    let want = (1..=NSIG)
        .filter(|s| forwardable(*s))
        .fold(0, |m, s| m | bit(s))
        & p.sys.sigmask;
    if HOST_BLOCKED.swap(want, Ordering::Relaxed) != want {
        let s = host_set(want);
        // SAFETY: valid sigset; single-threaded emulator.
        unsafe { libc::sigprocmask(libc::SIG_SETMASK, &s, std::ptr::null_mut()) };
    }
}

/// Moves host signals received since the last call to the guest's pending set, after
/// bringing the host mask in line with the guest's.
pub fn collect_host_signals(p: &mut Process) {
    sync_host_mask(p);
    take_host_signals(p);
}

fn take_host_signals(p: &mut Process) {
    let bits = HOST_PENDING.swap(0, Ordering::SeqCst);
    if bits == 0 {
        return;
    }
    for sig in (1..=NSIG).filter(|s| bits & bit(*s) != 0) {
        let cp = HOST_CODE_PID[sig as usize].load(Ordering::Relaxed);
        let us = HOST_UID_STATUS[sig as usize].load(Ordering::Relaxed);
        let info = SigInfo {
            signo: sig,
            code: cp as u32 as i32,
            pid: (cp >> 32) as u32 as i32,
            uid: us as u32,
            status: (us >> 32) as u32 as i32,
            ..Default::default()
        };
        if let SysResult::Kill(k) = send_self_info(p, info) {
            // Only SIGKILL, which the host delivers itself; keep the guest state coherent.
            p.sys.sigpending |= bit(k);
        }
    }
}

/// A fork child starts with no pending signals (Linux clears them in the child).
pub fn clear_pending_after_fork(p: &mut Process) {
    HOST_PENDING.store(0, Ordering::SeqCst);
    p.sys.sigpending = 0;
    p.sys.pending_info.clear();
}

/// Initial guest signal state of a freshly exec'd process, from the host state inherited
/// through execve: the blocked mask and ignored dispositions survive exec, as in Linux.
/// SIGPIPE cannot be inherited (the Rust runtime ignores it before `main`): the guest
/// starts with the default action, and the host disposition is set to match.
pub fn inherit_host_state(p: &mut Process) {
    sync_host_disposition(SIGPIPE, SIG_DFL);
    // SAFETY: queries of this process's signal state into local values.
    unsafe {
        let mut cur: libc::sigset_t = std::mem::zeroed();
        if libc::sigprocmask(libc::SIG_BLOCK, std::ptr::null(), &mut cur) == 0 {
            let mut m = 0;
            for sig in (1..=NSIG).filter(|s| forwardable(*s)) {
                if libc::sigismember(&cur, sig) == 1 {
                    m |= bit(sig);
                }
            }
            p.sys.sigmask = m;
            HOST_BLOCKED.store(m, Ordering::Relaxed);
        }
        for sig in (1..=NSIG).filter(|s| forwardable(*s) && *s != SIGPIPE) {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) == 0
                && old.sa_sigaction == libc::SIG_IGN
            {
                p.sigactions[sig as usize][0] = SIG_IGN;
            }
        }
    }
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
    if pid == own_pid() {
        return Ok(send_self(p, sig));
    }
    // Our process group, everyone, or another process: the host delivers it (to us too,
    // through the forwarding handler, when we are a member).
    // SAFETY: no pointers.
    let r = unsafe { libc::syscall(libc::SYS_kill, pid as libc::c_long, sig as libc::c_long) };
    if r == 0 && pid <= 0 && pid != -1 && sig != 0 {
        // Group-directed: make sure we see our own instance now, with kill's siginfo.
        HOST_PENDING.fetch_and(!bit(sig), Ordering::SeqCst);
        return Ok(send_self(p, sig));
    }
    host(r)
}

fn tkill(p: &mut Process, a: [u64; 6]) -> Sys {
    let (tid, sig) = (a[0] as i32, a[1] as i32);
    if tid <= 0 || !valid_sig(sig) {
        return fail(libc::EINVAL);
    }
    if tid == own_tid() {
        return Ok(send_self_info(p, SigInfo::sent(sig, SI_TKILL)));
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
        return Ok(send_self_info(p, SigInfo::sent(sig, SI_TKILL)));
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
        Some([w(0), w(1), w(2), w(3) & !UNBLOCKABLE])
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
        sync_host_disposition(sig, n[0]);
        if ignored(p, sig) {
            // Setting a disposition to ignore discards pending instances (Linux).
            let _ = take_pending(p, sig);
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
        // Newly unblocked pending signals are delivered as the call returns.
        p.sys.sigmask = m & !UNBLOCKABLE;
    }
    Ok(SysResult::Ret(0))
}

fn rt_sigpending(p: &mut Process, a: [u64; 6]) -> Sys {
    if a[1] > 8 {
        return fail(libc::EINVAL);
    }
    collect_host_signals(p);
    let v = p.sys.sigpending & p.sys.sigmask;
    write_bytes(p, a[0], &v.to_le_bytes()[..a[1] as usize])?;
    Ok(SysResult::Ret(0))
}

/// rt_sigsuspend(mask, size): waits for a signal with `mask` in place; the handler's frame
/// records the original mask, restored by rt_sigreturn. Always -EINTR.
fn rt_sigsuspend(p: &mut Process, a: [u64; 6]) -> Sys {
    if a[1] != 8 {
        return fail(libc::EINVAL);
    }
    let m = read_u64(p, a[0])?;
    p.sys.saved_sigmask = Some(p.sys.sigmask);
    p.sys.sigmask = m & !UNBLOCKABLE;
    // Host signals stay blocked between the check and the wait, so none is missed.
    let all = host_set(!0);
    // SAFETY: valid sigsets; the wait returns after a forwarding handler ran.
    unsafe {
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigprocmask(libc::SIG_BLOCK, &all, &mut old);
        loop {
            take_host_signals(p);
            let s = host_set(p.sys.sigmask);
            if p.sys.sigpending & !p.sys.sigmask != 0 {
                break;
            }
            libc::sigsuspend(&s);
        }
        libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        HOST_BLOCKED.store(u64::MAX, Ordering::Relaxed); // force a resync
    }
    fail(libc::EINTR)
}

/// rt_sigtimedwait(set, info, timeout, size): takes a pending signal of `set`. Nothing
/// pending: the host waits for the forwardable ones (blocked on the host as in the
/// guest); -EAGAIN when the timeout expires.
fn rt_sigtimedwait(p: &mut Process, a: [u64; 6]) -> Sys {
    let (set, infop, ts, size) = (a[0], a[1], a[2], a[3]);
    if size != 8 {
        return fail(libc::EINVAL);
    }
    let want = read_u64(p, set)? & !UNBLOCKABLE;
    let timeout = if ts != 0 {
        let b = read_bytes(p, ts, 16)?;
        let (s, ns) = (u64_at(&b, 0) as i64, u64_at(&b, 8) as i64);
        if s < 0 || !(0..1_000_000_000).contains(&ns) {
            return fail(libc::EINVAL);
        }
        Some(libc::timespec {
            tv_sec: s,
            tv_nsec: ns,
        })
    } else {
        None
    };
    collect_host_signals(p);
    let take = |p: &mut Process| -> Option<SigInfo> {
        let ready = p.sys.sigpending & want;
        (ready != 0).then(|| take_pending(p, ready.trailing_zeros() as i32 + 1))
    };
    let info = match take(p) {
        Some(i) => i,
        None => {
            let hs = host_set(want);
            // SAFETY: valid set, timeout and siginfo buffers owned here.
            let mut si: libc::siginfo_t = unsafe { std::mem::zeroed() };
            let r = unsafe {
                libc::sigtimedwait(
                    &hs,
                    &mut si,
                    timeout.as_ref().map_or(std::ptr::null(), |t| t as *const _),
                )
            };
            if r < 0 {
                return host(-1);
            }
            // SAFETY: reading the kill/SIGCHLD members of a kernel-filled siginfo.
            unsafe {
                SigInfo {
                    signo: r,
                    code: si.si_code,
                    pid: si.si_pid(),
                    uid: si.si_uid(),
                    status: if r == libc::SIGCHLD {
                        si.si_status()
                    } else {
                        0
                    },
                    ..Default::default()
                }
            }
        }
    };
    if infop != 0 {
        write_bytes(p, infop, &info.to_bytes())?;
    }
    Ok(SysResult::Ret(info.signo as i64))
}

const SS_ONSTACK: u32 = 1;
const SS_DISABLE: u32 = 2;
const SS_AUTODISARM: u32 = 1 << 31;
/// AArch64 MINSIGSTKSZ.
const MINSIGSTKSZ: u64 = 5120;

/// Linux `do_sigaltstack` for a new stack (used by sigaltstack and rt_sigreturn).
fn set_altstack(p: &mut Process, sp: u64, flags: u32, size: u64) -> Result<(), i32> {
    if on_altstack(p, p.cpu.x[31]) {
        return Err(libc::EPERM);
    }
    let mode = flags & !SS_AUTODISARM;
    if mode != 0 && mode != SS_DISABLE && mode != SS_ONSTACK {
        return Err(libc::EINVAL);
    }
    if mode == SS_DISABLE {
        p.sys.altstack = None;
    } else {
        if size < MINSIGSTKSZ {
            return Err(libc::ENOMEM);
        }
        p.sys.altstack = Some((sp, flags & SS_AUTODISARM, size));
    }
    Ok(())
}

/// sigaltstack(ss, old_ss); stack_t is { void *ss_sp; int ss_flags; size_t ss_size } (24
/// bytes) on AArch64.
fn sigaltstack(p: &mut Process, a: [u64; 6]) -> Sys {
    let new = if a[0] != 0 {
        let b = read_bytes(p, a[0], 24)?;
        Some((u64_at(&b, 0), u32_at(&b, 8), u64_at(&b, 16)))
    } else {
        None
    };
    if a[1] != 0 {
        let old = altstack_report(p, p.cpu.x[31]);
        write_bytes(p, a[1], &old)?;
    }
    if let Some((sp, flags, size)) = new {
        if let Err(e) = set_altstack(p, sp, flags, size) {
            return fail(e);
        }
    }
    Ok(SysResult::Ret(0))
}

#[cfg(test)]
mod tests {
    use super::super::guest::testing::*;
    use super::*;

    fn set_action(
        p: &mut Process,
        sig: u64,
        handler: u64,
        flags: u64,
        restorer: u64,
        mask: u64,
    ) -> SysResult {
        let a: Vec<u8> = [handler, flags, restorer, mask]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        p.mem
            .slice_mut(SCRATCH + 0x100, 32)
            .unwrap()
            .copy_from_slice(&a);
        call(p, 134, &[sig, SCRATCH + 0x100, 0, 8])
    }

    /// A process whose stack pointer is in the scratch area.
    fn with_stack() -> Process {
        let mut p = process();
        p.cpu.x[31] = SCRATCH + SCRATCH_LEN - 0x100;
        p
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
    fn self_signals_default_actions() {
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
        assert_eq!(call(&mut p, 129, &[pid, 9]), SysResult::Kill(9));
        assert_eq!(set_action(&mut p, 34, SIG_IGN, 0, 0, 0), SysResult::Ret(0));
        assert_eq!(call(&mut p, 129, &[pid, 34]), SysResult::Ret(0));
    }

    #[test]
    fn handler_frame_and_sigreturn() {
        let mut p = with_stack();
        let pid = std::process::id() as u64;
        let (handler, restorer) = (0x40_1000u64, 0x40_2000u64);
        assert_eq!(
            set_action(
                &mut p,
                10,
                handler,
                SA_SIGINFO | SA_RESTORER,
                restorer,
                bit(12)
            ),
            SysResult::Ret(0)
        );
        for i in 0..31 {
            p.cpu.x[i] = 0x1000 + i as u64;
        }
        p.cpu.v[5] = 0x1234_5678_9abc_def0_1122_3344_5566_7788;
        p.cpu.nzcv = 0x6000_0000;
        p.cpu.fpcr = 0x40_0000;
        let (sp, pc) = (p.cpu.x[31], p.cpu.pc);
        // kill(self, SIGUSR1) enters the handler; x0 is the signal number.
        assert_eq!(call(&mut p, 129, &[pid, 10]), SysResult::Ret(10));
        let frame = p.cpu.x[31];
        assert_eq!(frame, ((sp - 16) & !15) - FRAME_SIZE);
        assert_eq!(p.cpu.pc, handler);
        assert_eq!(p.cpu.x[30], restorer);
        assert_eq!(
            (p.cpu.x[1], p.cpu.x[2], p.cpu.x[29]),
            (frame, frame + 128, frame + FRAME_SIZE)
        );
        assert_eq!(p.sys.sigmask, bit(10) | bit(12));
        let f = get(&mut p, frame, FRAME_SIZE as usize);
        assert_eq!(u32_at(&f, 0), 10);
        assert_eq!(u32_at(&f, 8) as i32, SI_USER);
        assert_eq!(u32_at(&f, 16), pid as u32);
        assert_eq!(u64_at(&f, MC_REGS), 0); // x0 = kill's result
        assert_eq!(u64_at(&f, MC_REGS + 8 * 19), 0x1013);
        assert_eq!(
            (u64_at(&f, MC_SP), u64_at(&f, MC_PC), u64_at(&f, MC_PSTATE)),
            (sp, pc, 0x6000_0000)
        );
        assert_eq!(u32_at(&f, MC_RESERVED), FPSIMD_MAGIC);
        assert_eq!(u32_at(&f, MC_RESERVED + 4), 528);
        assert_eq!(u32_at(&f, MC_RESERVED + 12), 0x40_0000);
        assert_eq!(u32_at(&f, MC_RESERVED + FPSIMD_SIZE), 0); // terminator
                                                              // The handler clobbers registers, then returns through rt_sigreturn.
        p.cpu.x[19] = 0;
        p.cpu.v[5] = 0;
        p.cpu.nzcv = 0;
        assert_eq!(call(&mut p, 139, &[]), SysResult::Ret(0));
        assert_eq!(
            (p.cpu.x[31], p.cpu.pc, p.cpu.x[19], p.cpu.x[8]),
            (sp, pc, 0x1013, 129)
        );
        assert_eq!(p.cpu.v[5], 0x1234_5678_9abc_def0_1122_3344_5566_7788);
        assert_eq!(p.cpu.nzcv, 0x6000_0000);
        assert_eq!(p.sys.sigmask, 0);
    }

    #[test]
    fn blocked_signals_wait_for_unblock_and_stack() {
        let mut p = with_stack();
        let pid = std::process::id() as u64;
        assert_eq!(
            set_action(&mut p, 10, 0x40_1000, 0, 0, bit(12)),
            SysResult::Ret(0)
        );
        assert_eq!(
            set_action(&mut p, 12, 0x40_3000, 0, 0, 0),
            SysResult::Ret(0)
        );
        let all = SCRATCH + 0x200;
        p.mem
            .slice_mut(all, 8)
            .unwrap()
            .copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(
            call(&mut p, 135, &[SIG_BLOCK, all, SCRATCH + 0x208, 8]),
            SysResult::Ret(0)
        );
        assert_eq!(p.sys.sigmask, !UNBLOCKABLE);
        assert_eq!(call(&mut p, 129, &[pid, 12]), SysResult::Ret(0));
        assert_eq!(call(&mut p, 129, &[pid, 10]), SysResult::Ret(0));
        assert_eq!(call(&mut p, 136, &[SCRATCH + 0x210, 8]), SysResult::Ret(0));
        assert_eq!(
            get(&mut p, SCRATCH + 0x210, 8),
            (bit(10) | bit(12)).to_le_bytes()
        );
        // Unblocking delivers SIGUSR1 first; its sa_mask keeps SIGUSR2 pending until its
        // sigreturn, which then delivers SIGUSR2.
        assert_eq!(
            call(&mut p, 135, &[SIG_SETMASK, SCRATCH + 0x208, 0, 8]),
            SysResult::Ret(10)
        );
        assert_eq!(p.cpu.pc, 0x40_1000);
        assert_eq!(p.sys.sigpending, bit(12));
        assert!(p.sys.sigtramp != 0 && p.cpu.x[30] == p.sys.sigtramp);
        assert_eq!(call(&mut p, 139, &[]), SysResult::Ret(12));
        assert_eq!(p.cpu.pc, 0x40_3000);
        assert_eq!(call(&mut p, 135, &[7, all, 0, 8]), err(libc::EINVAL));
        assert_eq!(
            call(&mut p, 135, &[SIG_BLOCK, all, 0, 4]),
            err(libc::EINVAL)
        );
    }

    #[test]
    fn faults_go_to_handlers_or_terminate() {
        let mut p = with_stack();
        assert!(p
            .signal_fault(
                0x40_0000,
                Fault::Segv {
                    addr: 0x10,
                    write: true
                }
            )
            .is_some());
        assert_eq!(
            set_action(&mut p, 11, 0x40_1000, SA_SIGINFO, 0, 0),
            SysResult::Ret(0)
        );
        assert_eq!(
            p.signal_fault(
                0x40_0000,
                Fault::Segv {
                    addr: 0x10,
                    write: true
                }
            ),
            None
        );
        let sp = p.cpu.x[31];
        let f = get(&mut p, sp, 64);
        assert_eq!(
            (u32_at(&f, 0) as i32, u32_at(&f, 8) as i32, u64_at(&f, 16)),
            (SIGSEGV, SEGV_MAPERR, 0x10)
        );
        // A second fault while SIGSEGV is blocked (inside the handler) terminates.
        let t = p.signal_fault(
            0x40_1000,
            Fault::Segv {
                addr: 0x20,
                write: false,
            },
        );
        assert!(matches!(t, Some(Termination::Signaled { signal: 11, .. })));
        // A corrupt frame at sigreturn is a SIGSEGV (default action now: terminate).
        let mut p = with_stack();
        p.cpu.x[31] = SCRATCH + 8;
        assert_eq!(call(&mut p, 139, &[]), SysResult::Kill(11));
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
        // SA_ONSTACK handlers run on it.
        let mut p = with_stack();
        let (base, size) = (SCRATCH + 0x1000, 0x4000u64);
        let ss: Vec<u8> = [base, 0, size]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        p.mem
            .slice_mut(SCRATCH + 0x40, 24)
            .unwrap()
            .copy_from_slice(&ss);
        assert_eq!(call(&mut p, 132, &[SCRATCH + 0x40, 0]), SysResult::Ret(0));
        assert_eq!(
            set_action(&mut p, 10, 0x40_1000, SA_ONSTACK, 0, 0),
            SysResult::Ret(0)
        );
        assert_eq!(
            call(&mut p, 129, &[std::process::id() as u64, 10]),
            SysResult::Ret(10)
        );
        assert_eq!(p.cpu.x[31], base + size - 16 - FRAME_SIZE);
        // On the alternate stack: reported SS_ONSTACK, and it cannot be changed.
        assert_eq!(call(&mut p, 132, &[0, SCRATCH]), SysResult::Ret(0));
        assert_eq!(
            u32::from_le_bytes(get(&mut p, SCRATCH + 8, 4).try_into().unwrap()),
            SS_ONSTACK
        );
        assert_eq!(call(&mut p, 132, &[SCRATCH + 0x40, 0]), err(libc::EPERM));
    }
}
