//! The JIT tiers: guest IR regions compiled by Cranelift into host code.
//!
//! [`Compiler`] lowers a region (`vmc_compiler::lower`) and compiles it with one of two
//! Cranelift configurations: baseline (`opt_level=none`, single blocks, compiled on the
//! dispatcher thread as soon as a block is warm) and optimized (`opt_level=speed`, multi-block
//! regions along direct branches, compiled on a background thread when a block is hot).
//! Code is copied into [`code::CodeMemory`]; it needs no relocation because runtime entry
//! points and helpers are called through absolute addresses. [`slow`] holds the entry points
//! translated code calls for anything but the fast path of a memory access.

pub mod code;
pub mod fault;
pub mod slow;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cranelift_codegen::ir::{types, AbiParam, Function, InstBuilder, Signature, UserFuncName};
use cranelift_codegen::isa::{CallConv, OwnedTargetIsa};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use vmc_compiler::ir::{Block, BranchKind, Helper};
use vmc_compiler::lower::{self, Callee, Region};

/// Which compiler configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Tier {
    /// Quick compile, one block.
    Baseline,
    /// Optimizing compile, many blocks.
    Optimized,
}

/// Why a region could not be compiled (the dispatcher then keeps interpreting it).
#[derive(Debug, thiserror::Error)]
pub enum JitError {
    /// The host ISA is not supported by Cranelift.
    #[error("host not supported by Cranelift: {0}")]
    Host(String),
    /// Cranelift rejected the function.
    #[error("Cranelift failed to compile the region at {pc:#x}: {msg}")]
    Compile {
        /// Entry of the region.
        pc: u64,
        /// Cranelift's message.
        msg: String,
    },
    /// The generated code needs relocations (it must not).
    #[error("region at {0:#x} needs relocations")]
    Relocations(u64),
    /// Lowering or Cranelift panicked (a bug): the region stays in the interpreter.
    #[error("internal error compiling the region at {pc:#x}: {msg}")]
    Panicked {
        /// Entry of the region.
        pc: u64,
        /// The panic message.
        msg: String,
    },
}

pub use vmc_compiler::layout::lower_config;

/// Addresses the generated code calls, and the chain slots it may use.
pub struct JitEnv {
    /// Chain slot of each exit target that has one.
    pub slots: HashMap<u64, u32>,
    /// Profile counter addresses by block pc (empty when not profiling).
    pub counters: HashMap<u64, u64>,
    /// Whether indirect branches report their targets to the profile.
    pub profiling: bool,
    /// Whether loads rely on the host MMU ([`lower::Env::host_fault_loads`]).
    pub host_fault_loads: bool,
    /// Return-address prediction ([`lower::Env::host_calls`]).
    pub host_calls: bool,
    /// Targets indirect jumps were seen to reach, by branch pc (those inside the region
    /// become direct branches).
    pub indirect: HashMap<u64, Vec<u64>>,
    /// Jump tables in read-only memory, by the pc of the indirect jump that reads them
    /// (folded: [`lower::Env::jump_table`]); marked as code, and among the region's ranges.
    pub tables: HashMap<u64, lower::TableData>,
}

/// The guest ranges a region's code depends on: its blocks and the jump tables it folds.
pub fn region_ranges(blocks: &[&Block], env: &JitEnv) -> Vec<(u64, u64)> {
    blocks
        .iter()
        .map(|b| (b.guest_range().start, b.guest_range().end))
        .chain(env.tables.values().map(lower::TableData::range))
        .collect()
}

impl lower::Env for JitEnv {
    fn callee(&mut self, b: &mut FunctionBuilder, c: Callee) -> cranelift_codegen::ir::Value {
        b.ins().iconst(types::I64, slow::callee_addr(c) as i64)
    }
    fn helper(
        &mut self,
        b: &mut FunctionBuilder,
        h: &'static Helper,
    ) -> cranelift_codegen::ir::Value {
        b.ins().iconst(types::I64, h as *const Helper as i64)
    }
    fn chain_slot(&mut self, target: u64) -> Option<u32> {
        self.slots.get(&target).copied()
    }
    fn block_counter(&mut self, pc: u64) -> Option<u64> {
        self.counters.get(&pc).copied()
    }
    fn profiling(&self) -> bool {
        self.profiling
    }
    fn host_fault_loads(&self) -> bool {
        self.host_fault_loads
    }
    fn host_calls(&self) -> bool {
        self.host_calls
    }
    fn indirect_targets(&mut self, branch_pc: u64, _kind: BranchKind) -> Vec<u64> {
        self.indirect.get(&branch_pc).cloned().unwrap_or_default()
    }
    fn jump_table(&mut self, branch_pc: u64) -> Option<lower::TableData> {
        self.tables.get(&branch_pc).cloned()
    }
}

/// Cranelift set up for this host, in one configuration.
pub struct Compiler {
    isa: OwnedTargetIsa,
    fctx: FunctionBuilderContext,
    tier: Tier,
}

/// Machine code for one region.
pub struct CompiledRegion {
    /// Position-independent code bytes.
    pub code: Vec<u8>,
    /// Time Cranelift took.
    pub compile_time: Duration,
}

impl Compiler {
    /// Builds the compiler for `tier`.
    pub fn new(tier: Tier) -> Result<Compiler, JitError> {
        let isa =
            vmc_compiler::layout::host_isa(tier == Tier::Optimized).map_err(JitError::Host)?;
        Ok(Compiler {
            isa,
            fctx: FunctionBuilderContext::new(),
            tier,
        })
    }

    /// This compiler's tier.
    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// Lowers a region to Cranelift IR (for golden tests and `--dump-clif`).
    pub fn lower(&mut self, blocks: &[&Block], env: &mut JitEnv) -> Function {
        lower::lower_region(
            Region {
                blocks,
                loops: self.tier == Tier::Optimized,
                entries: &[],
            },
            env,
            lower_config(),
            &*self.isa,
            &mut self.fctx,
            UserFuncName::user(0, 0),
        )
    }

    /// Compiles a region to machine code. A panic in the lowering or in Cranelift (a bug
    /// a guest's code could trigger) becomes [`JitError::Panicked`]: the caller keeps the
    /// region in the interpreter, the host goes on.
    pub fn compile(
        &mut self,
        blocks: &[&Block],
        env: &mut JitEnv,
    ) -> Result<CompiledRegion, JitError> {
        let pc = blocks.first().map(|b| b.pc).unwrap_or(0);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.compile_unchecked(blocks, env)
        }));
        r.unwrap_or_else(|payload| {
            // The builder context may be left mid-function: start afresh.
            self.fctx = FunctionBuilderContext::new();
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(JitError::Panicked { pc, msg })
        })
    }

    fn compile_unchecked(
        &mut self,
        blocks: &[&Block],
        env: &mut JitEnv,
    ) -> Result<CompiledRegion, JitError> {
        let t0 = Instant::now();
        let pc = blocks.first().map(|b| b.pc).unwrap_or(0);
        let func = self.lower(blocks, env);
        // VMC_JIT_DUMP=DIR: write the guest IR, Cranelift IR and machine code of every
        // region (disassemble with `objdump -b binary -m i386:x86-64 -D`).
        let dump = std::env::var_os("VMC_JIT_DUMP").map(std::path::PathBuf::from);
        if let Some(dir) = &dump {
            let ir: String = blocks.iter().map(|b| b.to_string()).collect();
            let name = format!("{:?}-{pc:x}", self.tier);
            let _ = std::fs::write(dir.join(format!("{name}.ir")), ir);
            let _ = std::fs::write(dir.join(format!("{name}.clif")), func.display().to_string());
        }
        let name = format!("{:?}-{pc:x}", self.tier);
        self.finish_with(func, pc, t0, dump.map(|d| (d, name)))
    }

    fn finish(&mut self, func: Function, pc: u64, t0: Instant) -> Result<CompiledRegion, JitError> {
        self.finish_with(func, pc, t0, None)
    }

    /// Compiles `func`; with `dump` also writes its machine code (`NAME.bin`) and which guest
    /// instruction each host range comes from (`NAME.map`: host start, end, guest pc).
    fn finish_with(
        &mut self,
        func: Function,
        pc: u64,
        t0: Instant,
        dump: Option<(std::path::PathBuf, String)>,
    ) -> Result<CompiledRegion, JitError> {
        let mut ctx = cranelift_codegen::Context::for_function(func);
        let compiled = ctx
            .compile(&*self.isa, &mut cranelift_control::ControlPlane::default())
            .map_err(|e| JitError::Compile {
                pc,
                msg: format!("{:?}", e.inner),
            })?;
        if !compiled.buffer.relocs().is_empty() {
            return Err(JitError::Relocations(pc));
        }
        if let Some((dir, name)) = dump {
            let _ = std::fs::write(dir.join(format!("{name}.bin")), compiled.code_buffer());
            let map: String = compiled
                .buffer
                .get_srclocs_sorted()
                .iter()
                .filter(|s| !s.loc.is_default())
                .map(|s| {
                    let guest = pc.wrapping_add(s.loc.bits() as i32 as u64);
                    format!("{:x} {:x} {guest:x}\n", s.start, s.end)
                })
                .collect();
            let _ = std::fs::write(dir.join(format!("{name}.map")), map);
        }
        Ok(CompiledRegion {
            code: compiled.code_buffer().to_vec(),
            compile_time: t0.elapsed(),
        })
    }

    /// A region that writes nothing and returns `CONTINUE` (the filler of empty
    /// indirect-branch table entries).
    pub fn continue_stub(&mut self) -> Result<CompiledRegion, JitError> {
        let t0 = Instant::now();
        let mut func =
            Function::with_name_signature(UserFuncName::user(0, 2), lower::region_signature());
        let mut b = FunctionBuilder::new(&mut func, &mut self.fctx);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let v = b.ins().iconst(types::I64, lower::exit::CONTINUE);
        b.ins().return_(&[v]);
        b.seal_all_blocks();
        b.finalize(self.isa.frontend_config());
        self.finish(func, 0, t0)
    }

    /// The entry trampoline: `extern "C" fn(code) -> i64` calling a region (which uses the
    /// `tail` convention so regions can chain by tail calls; the frame is in r15).
    pub fn trampoline(&mut self) -> Result<CompiledRegion, JitError> {
        let t0 = Instant::now();
        let mut sig = Signature::new(CallConv::SystemV);
        sig.params.push(AbiParam::new(types::I64));
        sig.returns.push(AbiParam::new(types::I64));
        let mut func = Function::with_name_signature(UserFuncName::user(0, 1), sig);
        let mut b = FunctionBuilder::new(&mut func, &mut self.fctx);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let code = b.block_params(entry)[0];
        let region_sig = b.import_signature(lower::region_signature());
        // No host caller above: 0 is no call's return site (a RET to 0 that matches it returns
        // CONTINUE with pc 0, which is what the indirect path would do).
        let none = b.ins().iconst(types::I64, 0);
        let call = b.ins().call_indirect(region_sig, code, &[none]);
        let r = b.inst_results(call)[0];
        b.ins().return_(&[r]);
        b.seal_all_blocks();
        b.finalize(self.isa.frontend_config());
        self.finish(func, 0, t0)
    }
}

pub use vmc_compiler::ir::exit_targets;

/// A request to the background compiler.
pub struct Job {
    /// Region entry.
    pub pc: u64,
    /// The region's blocks, entry first.
    pub blocks: Vec<Arc<Block>>,
    /// Its lowering environment: chain slots of its exit targets, profile counters.
    pub env: JitEnv,
    /// Code-cache generation when the job was made (stale results are dropped).
    pub generation: u64,
}

/// A finished background compile.
pub struct Done {
    /// Region entry.
    pub pc: u64,
    /// The job's generation.
    pub generation: u64,
    /// Guest instructions in the region.
    pub guest_insns: u64,
    /// Guest address ranges the region covers.
    pub ranges: Vec<(u64, u64)>,
    /// The code, or why there is none.
    pub result: Result<CompiledRegion, JitError>,
}

/// A background thread running the optimizing compiler.
pub struct Background {
    jobs: Option<mpsc::Sender<Job>>,
    done: mpsc::Receiver<Done>,
    /// Set when the owner goes away: queued jobs are dropped, not compiled.
    stop: Arc<AtomicBool>,
}

impl Background {
    /// Starts the thread.
    pub fn start() -> Result<Background, JitError> {
        let mut compiler = Compiler::new(Tier::Optimized)?;
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
        let (done_tx, done_rx) = mpsc::channel::<Done>();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::Builder::new()
            .name("vmc-jit-opt".into())
            .spawn(move || {
                for job in jobs_rx {
                    if stopped.load(Ordering::Relaxed) {
                        break;
                    }
                    let blocks: Vec<&Block> = job.blocks.iter().map(|b| &**b).collect();
                    let mut env = job.env;
                    let result = compiler.compile(&blocks, &mut env);
                    let done = Done {
                        pc: job.pc,
                        generation: job.generation,
                        guest_insns: blocks.iter().map(|b| b.guest_insns as u64).sum(),
                        ranges: region_ranges(&blocks, &env),
                        result,
                    };
                    if done_tx.send(done).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| JitError::Host(e.to_string()))?;
        Ok(Background {
            jobs: Some(jobs_tx),
            done: done_rx,
            stop,
        })
    }

    /// Queues a job; false if the thread is gone.
    pub fn submit(&self, job: Job) -> bool {
        self.jobs.as_ref().is_some_and(|j| j.send(job).is_ok())
    }

    /// A finished job, if any.
    pub fn poll(&self) -> Option<Done> {
        self.done.try_recv().ok()
    }

    /// Waits for the next finished job.
    pub fn wait(&self) -> Option<Done> {
        self.done.recv().ok()
    }
}

impl Drop for Background {
    /// Lets the thread go without waiting: it owns everything it uses, skips the jobs still
    /// queued and ends when it sees the closed channels (a guest that exits while tier-ups
    /// are queued would otherwise wait for compiles nobody will run: 150 ms at the end of a
    /// 20 ms nbody run).
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.jobs.take();
    }
}
