//! The dispatcher: finds or translates the block at the guest PC, runs it on the reference
//! interpreter (tier 0), and turns block exits into system calls, signals or exit.

use std::time::{Duration, Instant};

use vmc_compiler::a64;
use vmc_compiler::interp::{run_block, Exit};
use vmc_compiler::ir::{Block, TrapKind};
use vmc_compiler::lower::JitContext;
use vmc_compiler::mem::Fault;

use crate::jit::fault;
use crate::jit::slow::SlowState;
use crate::memory::perm;
use crate::process::Process;
use crate::syscalls::{self, SysResult};
use crate::tiers::{native_exit, CodeCache, Runnable, TierConfig};

/// How the guest ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Termination {
    /// It called exit/exit_group with this status.
    Exited(i32),
    /// It was killed by this signal; `reason` says why (for the one-line message).
    Signaled {
        /// Signal number (Linux numbering, same on AArch64 and x86-64).
        signal: i32,
        /// What happened, e.g. "segmentation fault at pc 0x400123 accessing 0x0".
        reason: String,
    },
}

impl Termination {
    /// The exit status a shell would report: the status, or 128 + signal.
    pub fn exit_code(&self) -> i32 {
        match self {
            Termination::Exited(c) => *c,
            Termination::Signaled { signal, .. } => 128 + signal,
        }
    }
}

/// Options of the execution loop.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// Print every executed instruction to stderr (forces the interpreter).
    pub trace: bool,
    /// Tier policy and code-cache size.
    pub tiers: TierConfig,
    /// Measure time per tier (costs two clock reads per dispatch).
    pub timing: bool,
    /// Code of the AOT image being run, if any.
    pub aot: Option<std::sync::Arc<crate::aot::AotCode>>,
    /// Most dispatcher iterations (blocks run by the interpreter, entries into translated
    /// code); when exhausted the run ends with SIGXCPU, like an exceeded CPU-time limit.
    /// Tests use it to bound guests that may not terminate. Translated code that loops or
    /// chains without returning to the dispatcher is not bounded by it.
    pub max_dispatches: Option<u64>,
    /// Record an execution profile (instrumented translations, counted interpretation).
    pub profile: Option<std::sync::Arc<crate::profile::Recorder>>,
}

/// Wall time split of a run.
#[derive(Debug, Clone, Default)]
pub struct Timing {
    /// Total time in the run loop.
    pub total: Duration,
    /// Time translating guest code to IR.
    pub translate: Duration,
    /// Time in system calls.
    pub syscalls: Duration,
    /// Time in the interpreter (when measured).
    pub interp: Duration,
    /// Time in translated code (when measured).
    pub jit: Duration,
    /// Time checking and loading an AOT image before the run (digest, metadata, map, code
    /// mapping, import table).
    pub image_load: Duration,
}

/// Linux signal numbers used here.
pub mod sig {
    /// Illegal instruction.
    pub const SIGILL: i32 = 4;
    /// Breakpoint/trace trap.
    pub const SIGTRAP: i32 = 5;
    /// Bus error (misaligned atomic).
    pub const SIGBUS: i32 = 7;
    /// Invalid memory reference.
    pub const SIGSEGV: i32 = 11;
    /// CPU-time limit exceeded (here: the dispatch budget of [`super::ExecOptions`]).
    pub const SIGXCPU: i32 = 24;
}

impl Process {
    /// Discards translations of a guest range whose code changed or went away.
    pub fn invalidate(&mut self, addr: u64, len: u64) {
        self.pending_invalidations
            .push((addr, addr.saturating_add(len)));
    }

    /// Runs the guest until it exits or is killed.
    pub fn run(&mut self, opts: &ExecOptions, timing: &mut Timing) -> Termination {
        let start = Instant::now();
        let mut cache = CodeCache::new(
            opts.tiers,
            opts.trace,
            opts.aot.clone(),
            opts.profile.clone(),
        );
        self.profile = opts.profile.clone();
        cache.mark_aot_code(&mut self.mem);
        let mut temps = Vec::new();
        let mut slow = SlowState {
            mem: std::ptr::null_mut(),
            fault: None,
            profile: opts
                .profile
                .as_ref()
                .map_or(std::ptr::null(), std::sync::Arc::as_ptr),
        };
        *self.cpu.ctx_mut() = JitContext {
            mem_base: self.mem.host_base() as u64,
            perms: self.mem.perms_table() as u64,
            chain: cache.chain_table(),
            indirect: cache.indirect_table(),
            imports: cache.aot_import_table(),
            ..Default::default()
        };
        let (lo, hi) = self.mem.host_range();
        self.cpu.escape_mut().sandbox = [lo, hi];
        let mut dispatches = 0u64;
        let result = loop {
            if let Some(max) = opts.max_dispatches {
                if dispatches >= max {
                    break Termination::Signaled {
                        signal: sig::SIGXCPU,
                        reason: format!(
                            "dispatch budget of {max} exhausted at pc {:#x}",
                            self.cpu.pc
                        ),
                    };
                }
                dispatches += 1;
            }
            for (s, e) in std::mem::take(&mut self.pending_invalidations) {
                self.drop_translations(&mut cache, s, e);
            }
            if let Some((s, e)) = self.mem.code_written.take() {
                self.drop_translations(&mut cache, s, e);
            }
            if !cache.precise_loads() && self.handles_segv() {
                // Translations so far let the host MMU refuse loads, which cannot be resumed
                // in a guest handler: from now on loads check the page table.
                cache.require_precise_loads();
                self.drop_translations(&mut cache, 0, crate::memory::GUEST_SPACE);
            }
            cache.poll_background();
            let t0 = opts.timing.then(Instant::now);
            let exit = match cache.runnable(self.cpu.pc, &self.cpu.x, &mut self.mem) {
                Runnable::Interp(block) => {
                    if opts.trace {
                        self.trace(&block);
                    }
                    self.counters.blocks_executed += 1;
                    self.counters.insns_executed += block.guest_insns as u64;
                    let exit = run_block(&block, &mut self.cpu, &mut self.mem, &mut temps);
                    if let Some(p) = &opts.profile {
                        p.count_interp(&block, &exit, self.cpu.pc);
                    }
                    if let Some(t0) = t0 {
                        timing.interp += t0.elapsed();
                    }
                    exit
                }
                Runnable::Native(code) => {
                    let Some(enter) = cache.trampoline() else {
                        unreachable!("native code exists only when the JIT started")
                    };
                    // Fresh raw pointers for this call; nothing else touches memory, state or
                    // context until the translated code returns.
                    slow.mem = &mut self.mem;
                    self.cpu.ctx_mut().runtime = &mut slow as *mut SlowState as u64;
                    // SAFETY: `enter` and `code` are this cache's translated code; the frame
                    // (state and context) outlives the call.
                    let r = unsafe { fault::enter(self.cpu.frame_ptr(), code, enter) };
                    if let Some(t0) = t0 {
                        timing.jit += t0.elapsed();
                    }
                    if r == fault::HOST_FAULT {
                        // A load the guest may not do, refused by the host MMU: the guest
                        // has no SIGSEGV handler (else loads are checked), so it dies.
                        let addr = self.cpu.escape().fault_addr;
                        // A page beyond the end of its file, or one the host could read but
                        // faulted on (its file was truncated since): SIGBUS, as in Linux.
                        let p = self.mem.perm(addr);
                        if p & (perm::UNBACKED | perm::R) != 0 {
                            break fault_termination(self.cpu.pc, Fault::Unbacked { addr });
                        }
                        break Termination::Signaled {
                            signal: sig::SIGSEGV,
                            reason: format!(
                                "segmentation fault: read of address {addr:#x} in translated \
                                 code entered at pc {:#x}",
                                self.cpu.pc
                            ),
                        };
                    }
                    native_exit(r, &self.cpu, self.cpu.ctx(), slow.fault.take())
                }
            };
            match exit {
                Exit::Continue(_) => {}
                Exit::Syscall => {
                    let t0 = Instant::now();
                    let r = syscalls::dispatch(self);
                    timing.syscalls += t0.elapsed();
                    if std::mem::take(&mut self.fork_child) {
                        // The host fork copied the JIT's shared code memory and lost its
                        // compile thread: give this process its own.
                        cache.after_fork();
                        self.cpu.ctx_mut().chain = cache.chain_table();
                        self.cpu.ctx_mut().indirect = cache.indirect_table();
                    }
                    match r {
                        SysResult::Ret(v) => self.cpu.x[0] = v as u64,
                        SysResult::Exit(code) => break Termination::Exited(code),
                        SysResult::Kill(signal) => {
                            break Termination::Signaled {
                                signal,
                                reason: format!("killed by signal {signal}"),
                            }
                        }
                    }
                }
                // Synchronous signals: run the guest's handler, or terminate (syscalls/signal.rs).
                Exit::Fault { pc, fault } => {
                    if let Some(t) = self.signal_fault(pc, fault) {
                        break t;
                    }
                }
                Exit::Trap { kind, pc, insn } => {
                    if let Some(t) = self.signal_trap(kind, pc, insn) {
                        break t;
                    }
                }
            }
        };
        timing.total += start.elapsed();
        self.counters.blocks_translated = cache.stats.misses;
        self.counters.insns_translated = cache.stats.ir_guest_insns;
        self.counters.jit = cache.stats.clone();
        result
    }

    fn drop_translations(&mut self, cache: &mut CodeCache, start: u64, end: u64) {
        // Blocks never cross a page, so page granularity is exact for the CODE marks.
        let (start, end) = (crate::memory::page_down(start), crate::memory::page_up(end));
        let n = cache.invalidate(start, end);
        if n > 0 {
            self.counters.invalidations += n as u64;
            self.mem.clear_code(start, end - start);
        }
    }

    fn trace(&self, block: &Block) {
        for op in &block.ops {
            if let vmc_compiler::ir::Op::Insn { pc, insn } = op {
                eprintln!(
                    "[trace] {pc:#012x}: {insn:08x}  {}",
                    a64::disasm(*insn, *pc)
                );
            }
        }
    }
}

/// The signal and message for a faulting instruction.
pub fn fault_termination(pc: u64, fault: Fault) -> Termination {
    match fault {
        Fault::Segv { addr, write } => Termination::Signaled {
            signal: sig::SIGSEGV,
            reason: format!(
                "segmentation fault: {} of address {addr:#x} at pc {pc:#x}",
                if write { "write" } else { "read" }
            ),
        },
        Fault::Bus { addr } => Termination::Signaled {
            signal: sig::SIGBUS,
            reason: format!("bus error: misaligned atomic access to {addr:#x} at pc {pc:#x}"),
        },
        Fault::Unbacked { addr } => Termination::Signaled {
            signal: sig::SIGBUS,
            reason: format!(
                "bus error: access to {addr:#x}, beyond the end of its mapped file, at pc {pc:#x}"
            ),
        },
        Fault::Undefined { insn } => trap_termination(TrapKind::Undefined, pc, insn),
    }
}

/// The signal and message for a trapping instruction.
pub fn trap_termination(kind: TrapKind, pc: u64, insn: u32) -> Termination {
    match kind {
        TrapKind::Undefined => Termination::Signaled {
            signal: sig::SIGILL,
            reason: format!("illegal instruction {insn:08x} at pc {pc:#x}: {}", a64::undefined_reason(insn)),
        },
        TrapKind::PermanentlyUndefined => Termination::Signaled {
            signal: sig::SIGILL,
            reason: format!("illegal instruction {insn:08x} (udf) at pc {pc:#x}"),
        },
        TrapKind::Breakpoint => Termination::Signaled {
            signal: sig::SIGTRAP,
            reason: format!("breakpoint (brk) at pc {pc:#x}"),
        },
        TrapKind::FetchFault => Termination::Signaled {
            signal: sig::SIGSEGV,
            reason: format!("segmentation fault: instruction fetch from unmapped or non-executable address {pc:#x}"),
        },
    }
}
