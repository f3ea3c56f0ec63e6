//! Host faults of translated code: loads that rely on the host MMU.
//!
//! Translated code may load from any guest address below the address-space bound without
//! consulting the page table ([`vmc_compiler::lower::Env::host_fault_loads`]): the guest
//! reservation mirrors guest read permission in host protections, so a load the guest may
//! not do raises a host SIGSEGV. [`enter`] runs translated code with an escape hatch: the
//! handler installed by [`install`] recognizes a fault of translated code on the guest
//! reservation and resumes at [`abort_landing`], which unwinds to [`enter`]'s caller with
//! [`HOST_FAULT`]. Guest registers are then not recoverable (they may live in host
//! registers), so the dispatcher uses this only while the guest has no SIGSEGV handler and
//! terminates the guest by SIGSEGV, as Linux would. Any other host fault goes to the
//! previous disposition (a crash with Rust's or the default message).

use std::sync::atomic::{AtomicU64, Ordering};

use vmc_compiler::lower::Frame;

/// Exit code of [`enter`] when translated code was stopped by a host fault.
pub const HOST_FAULT: i64 = -1;

/// Stack pointer of the innermost [`enter`] (after it saved its registers), 0 outside.
static ABORT_SP: AtomicU64 = AtomicU64::new(0);
/// Guest address of the last host fault (offset into the reservation).
static FAULT_ADDR: AtomicU64 = AtomicU64::new(0);
/// The guest reservation: [start, end) host addresses.
static SANDBOX: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
/// Host code ranges of translated code: [start, end) pairs (JIT code memory, AOT images).
static CODE: [AtomicU64; 2 * CODE_RANGES] = [const { AtomicU64::new(0) }; 2 * CODE_RANGES];
const CODE_RANGES: usize = 8;
/// The disposition replaced by [`install`] (a `libc::sigaction`, written once).
static mut PREVIOUS: std::mem::MaybeUninit<libc::sigaction> = std::mem::MaybeUninit::zeroed();
static INSTALL: std::sync::Once = std::sync::Once::new();

/// The entry trampoline's type: `(region code) -> exit code` (the frame is in r15).
pub type Trampoline = unsafe extern "C" fn(u64) -> i64;

/// Installs the host SIGSEGV handler (once per process).
pub fn install() {
    INSTALL.call_once(|| {
        // SAFETY: a handler that only reads atomics and rewrites the interrupted context of
        // faults it recognizes; `PREVIOUS` is written here once, before the handler runs.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            libc::sigemptyset(&mut sa.sa_mask);
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            sa.sa_sigaction = handler as *const () as usize;
            let prev = &raw mut PREVIOUS;
            libc::sigaction(libc::SIGSEGV, &sa, (*prev).as_mut_ptr());
        }
    });
}

/// Declares the guest reservation, `[start, end)` host addresses.
pub fn set_sandbox(start: u64, end: u64) {
    SANDBOX[0].store(start, Ordering::SeqCst);
    SANDBOX[1].store(end, Ordering::SeqCst);
}

/// Declares a range of host code holding translated code (ignored once the table is full;
/// faults there then stay host crashes).
pub fn add_code_range(start: u64, end: u64) {
    for i in 0..CODE_RANGES {
        let (s, e) = (&CODE[2 * i], &CODE[2 * i + 1]);
        if s.load(Ordering::SeqCst) == start && e.load(Ordering::SeqCst) == end {
            return;
        }
        if e.load(Ordering::SeqCst) == 0 {
            s.store(start, Ordering::SeqCst);
            e.store(end, Ordering::SeqCst);
            return;
        }
    }
}

/// The guest address of the last host fault.
pub fn fault_addr() -> u64 {
    FAULT_ADDR.load(Ordering::SeqCst)
}

fn in_code(pc: u64) -> bool {
    (0..CODE_RANGES).any(|i| {
        let (s, e) = (
            CODE[2 * i].load(Ordering::Relaxed),
            CODE[2 * i + 1].load(Ordering::Relaxed),
        );
        s <= pc && pc < e
    })
}

extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo and ucontext for an SA_SIGINFO handler.
    unsafe {
        let addr = (*info).si_addr() as u64;
        let uc = uc as *mut libc::ucontext_t;
        let gregs = &mut (*uc).uc_mcontext.gregs;
        let pc = gregs[libc::REG_RIP as usize] as u64;
        let sp = ABORT_SP.load(Ordering::Relaxed);
        let (lo, hi) = (
            SANDBOX[0].load(Ordering::Relaxed),
            SANDBOX[1].load(Ordering::Relaxed),
        );
        if sp != 0 && lo <= addr && addr < hi && in_code(pc) {
            FAULT_ADDR.store(addr - lo, Ordering::Relaxed);
            gregs[libc::REG_RIP as usize] = abort_landing as *const () as usize as i64;
            return;
        }
        // Not ours: put the previous disposition back; the faulting instruction runs again
        // and faults into it.
        let prev = &raw const PREVIOUS;
        libc::sigaction(sig, (*prev).as_ptr(), std::ptr::null_mut());
    }
}

/// Runs translated code through `tramp` (`tramp(code)` with the frame in Cranelift's pinned
/// register r15), saving what [`abort_landing`] needs to return from it with [`HOST_FAULT`]
/// instead.
///
/// # Safety
/// `tramp` and `code` are translated code for this runtime; `frame` is valid for the whole
/// run. Not reentrant (one guest thread per process).
#[unsafe(naked)]
pub unsafe extern "C" fn enter(frame: *mut Frame, code: u64, tramp: Trampoline) -> i64 {
    core::arch::naked_asm!(
        "push rbp",
        "mov rbp, rsp",
        "push rbx",
        "push r12",
        "push r13",
        "push r14",
        "push r15",
        // 16-byte alignment at the call: return address + 6 pushes + 8.
        "sub rsp, 8",
        "mov [rip + {sp}], rsp",
        // The frame lives in Cranelift's pinned register for the whole run.
        "mov r15, rdi",
        "mov rdi, rsi",
        "call rdx",
        "jmp {leave}",
        sp = sym ABORT_SP,
        leave = sym leave,
    )
}

/// Where the fault handler resumes: drops the frames of translated code and returns
/// [`HOST_FAULT`] from the innermost [`enter`].
///
/// # Safety
/// Only the fault handler transfers here, while [`enter`] is active.
#[unsafe(naked)]
pub unsafe extern "C" fn abort_landing() {
    core::arch::naked_asm!(
        "mov rsp, [rip + {sp}]",
        "mov rax, {code}",
        "jmp {leave}",
        sp = sym ABORT_SP,
        code = const HOST_FAULT,
        leave = sym leave,
    )
}

/// The epilogue [`enter`] and [`abort_landing`] share: clears the escape hatch and restores
/// what [`enter`] saved (rax holds the exit code).
///
/// # Safety
/// Only jumped to from those two, with the stack as [`enter`] left it before its call.
#[unsafe(naked)]
unsafe extern "C" fn leave() {
    core::arch::naked_asm!(
        "mov qword ptr [rip + {sp}], 0",
        "add rsp, 8",
        "pop r15",
        "pop r14",
        "pop r13",
        "pop r12",
        "pop rbx",
        "pop rbp",
        "ret",
        sp = sym ABORT_SP,
    )
}
