//! Host faults of translated code: loads that rely on the host MMU.
//!
//! Translated code may load from any guest address below the address-space bound without
//! consulting the page table ([`vmc_compiler::lower::Env::host_fault_loads`]): the guest
//! reservation mirrors guest read permission in host protections, so a load the guest may
//! not do raises a host SIGSEGV. [`enter`] runs translated code with an escape hatch: the
//! handler installed by [`install`] recognizes a fault of translated code (its pc is in a
//! range declared by [`CodeRange`]) on the reservation of the frame that code runs (the
//! frame is in the pinned register, its [`Escape`] says where to unwind to) and resumes at
//! [`enter`]'s epilogue with [`HOST_FAULT`]. The escape state is per frame, so any number of
//! threads may run guests (each with its own memory, code and frame) at once. Guest
//! registers are then not recoverable (they may live in host registers), so the dispatcher
//! uses this only while the guest has no SIGSEGV handler and terminates the guest by
//! SIGSEGV, as Linux would. Any other host fault goes to the previous disposition (a crash
//! with Rust's or the default message).

use std::mem::offset_of;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use vmc_compiler::lower::{Escape, Frame, JitContext};

/// Exit code of [`enter`] when translated code was stopped by a host fault.
pub const HOST_FAULT: i64 = vmc_compiler::lower::exit::HOST_FAULT;

/// Host code ranges of translated code: [start, end) pairs (JIT code memories, AOT images),
/// read by the handler; an unused slot has end 0.
static CODE: [AtomicU64; 2 * CODE_RANGES] = [const { AtomicU64::new(0) }; 2 * CODE_RANGES];
const CODE_RANGES: usize = 64;
/// Serializes changes of [`CODE`] (the handler only reads it).
static CODE_LOCK: Mutex<()> = Mutex::new(());
/// The disposition replaced by [`install`] (a `libc::sigaction`, written once).
static mut PREVIOUS: std::mem::MaybeUninit<libc::sigaction> = std::mem::MaybeUninit::zeroed();
static INSTALL: std::sync::Once = std::sync::Once::new();

const ESCAPE_SP: usize = offset_of!(Frame, escape) + offset_of!(Escape, sp);
const STACK_LIMIT: usize = offset_of!(Frame, ctx) + offset_of!(JitContext, stack_limit);
/// Host stack translated code may use for guest calls made host calls (return-address
/// prediction) below [`enter`]'s frame: thousands of nested guest calls; deeper ones are
/// tail calls.
const CALL_STACK_BYTES: usize = 256 << 10;

/// The entry trampoline's type: `(region code) -> exit code` (the frame is in r15).
pub type Trampoline = unsafe extern "C" fn(u64) -> i64;

/// Installs the host SIGSEGV handler (once per process).
pub fn install() {
    INSTALL.call_once(|| {
        // SAFETY: a handler that only reads atomics and the faulting code's frame and
        // rewrites the interrupted context of faults it recognizes; `PREVIOUS` is written
        // here once, before the handler runs.
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

/// A range of host memory holding translated code, declared to the handler for as long as
/// this value lives (not declared when all slots are taken: faults there stay host crashes).
#[derive(Debug)]
pub struct CodeRange {
    slot: Option<usize>,
}

impl CodeRange {
    /// Declares `[start, end)`.
    pub fn new(start: u64, end: u64) -> CodeRange {
        let _g = CODE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let slot = (0..CODE_RANGES).find(|&i| CODE[2 * i + 1].load(Ordering::SeqCst) == 0);
        if let Some(i) = slot {
            CODE[2 * i].store(start, Ordering::SeqCst);
            CODE[2 * i + 1].store(end, Ordering::SeqCst);
        }
        CodeRange { slot }
    }
}

impl Drop for CodeRange {
    fn drop(&mut self) {
        let _g = CODE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = self.slot {
            // End first: a reader never sees a range with a stale end.
            CODE[2 * i + 1].store(0, Ordering::SeqCst);
            CODE[2 * i].store(0, Ordering::SeqCst);
        }
    }
}

/// Whether host address `pc` lies in translated code (a JIT code memory or an AOT image),
/// e.g. to tell a guest looping in translated code from the host being stuck. Reads only
/// atomics: callable from a signal handler.
pub fn in_translated_code(pc: u64) -> bool {
    in_code(pc)
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
    // SAFETY: the kernel passes a valid siginfo and ucontext for an SA_SIGINFO handler. Code
    // in a declared range is translated code, which always holds its frame in r15 (the
    // pinned register, set by `enter`), and the frame outlives the run.
    unsafe {
        let addr = (*info).si_addr() as u64;
        let uc = uc as *mut libc::ucontext_t;
        let gregs = &mut (*uc).uc_mcontext.gregs;
        let pc = gregs[libc::REG_RIP as usize] as u64;
        if in_code(pc) {
            let frame = gregs[libc::REG_R15 as usize] as *mut Frame;
            let esc = &mut (*frame).escape;
            let [lo, hi] = esc.sandbox;
            if esc.sp != 0 && lo <= addr && addr < hi {
                esc.fault_addr = addr - lo;
                gregs[libc::REG_RSP as usize] = esc.sp as i64;
                gregs[libc::REG_RAX as usize] = HOST_FAULT;
                gregs[libc::REG_RIP as usize] = leave as *const () as usize as i64;
                return;
            }
        }
        // Not ours: put the previous disposition back; the faulting instruction runs again
        // and faults into it.
        let prev = &raw const PREVIOUS;
        libc::sigaction(sig, (*prev).as_ptr(), std::ptr::null_mut());
    }
}

/// Runs translated code through `tramp` (`tramp(code)` with the frame in Cranelift's pinned
/// register r15), saving in the frame's [`Escape`] where the handler unwinds to on a host
/// fault (then [`enter`] returns [`HOST_FAULT`]) and setting the context's host stack limit
/// for guest calls ([`CALL_STACK_BYTES`] below this frame).
///
/// # Safety
/// `tramp` and `code` are translated code for this runtime; `frame` is valid for the whole
/// run, with its [`Escape::sandbox`] set. Not reentrant per frame.
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
        "mov [rdi + {sp}], rsp",
        "lea rax, [rsp - {budget}]",
        "mov [rdi + {limit}], rax",
        // The frame lives in Cranelift's pinned register for the whole run.
        "mov r15, rdi",
        "mov rdi, rsi",
        "call rdx",
        "jmp {leave}",
        sp = const ESCAPE_SP,
        limit = const STACK_LIMIT,
        budget = const CALL_STACK_BYTES,
        leave = sym leave,
    )
}

/// The epilogue of [`enter`], also where the handler resumes after a host fault (with rax =
/// [`HOST_FAULT`]): clears the escape hatch and restores what [`enter`] saved.
///
/// # Safety
/// Only reached from [`enter`] or its handler, with the stack as [`enter`] left it before
/// its call and the frame in r15.
#[unsafe(naked)]
unsafe extern "C" fn leave() {
    core::arch::naked_asm!(
        "mov qword ptr [r15 + {sp}], 0",
        "add rsp, 8",
        "pop r15",
        "pop r14",
        "pop r13",
        "pop r12",
        "pop rbx",
        "pop rbp",
        "ret",
        sp = const ESCAPE_SP,
    )
}
