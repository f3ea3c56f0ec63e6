//! The code cache and tier policy: guest PC → translation (IR for the interpreter, host code
//! from the baseline or optimizing JIT), with a direct-mapped jump cache in front, hotness
//! counters, background tier-up, chain slots, invalidation, eviction and statistics.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use vmc_compiler::ir::{Block, BranchKind, Op};
use vmc_compiler::lower::{self, JitContext};
use vmc_compiler::{a64, CpuState};

use crate::aot::AotCode;
use crate::jit::fault::{self, Trampoline};
use crate::jit::{self, code::CodeMemory, Background, Compiler, JitEnv, Job, Tier};
use crate::memory::GuestMemory;
use crate::profile::Recorder;

/// Which tiers the dispatcher may use (`vmrun --tier`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize)]
pub enum TierMode {
    /// Interpret everything (tier 0 only).
    Interp,
    /// Compile every block with the baseline JIT on first execution.
    Baseline,
    /// Compile optimized regions synchronously on first execution.
    Opt,
    /// Interpreter, then baseline when warm, then optimized regions in the background when hot.
    #[default]
    Auto,
}

/// Tiering parameters.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct TierConfig {
    /// Which tiers.
    pub mode: TierMode,
    /// Executions before a block is compiled by the baseline JIT (auto mode).
    pub baseline_threshold: u32,
    /// Executions before a block heads an optimized region (auto mode).
    pub opt_threshold: u32,
    /// Bytes of host code kept before translations are evicted.
    pub code_cache_size: usize,
    /// Most blocks in an optimized region.
    pub max_region_blocks: usize,
    /// Translated loads check the page table, so a guest fault in translated code is always
    /// precise (exact pc and registers, as in the interpreter). Off by default: loads rely on
    /// the host MMU, and a fault the guest does not handle ends it without its exact pc.
    pub precise_faults: bool,
    /// Return-address prediction ([`vmc_compiler::lower::Env::host_calls`]): guest calls
    /// out of translated code are host calls, their returns host returns, and optimized
    /// regions take in the return sites of their calls. Off by default (measured no faster
    /// here: see the README).
    pub return_prediction: bool,
}

impl Default for TierConfig {
    fn default() -> Self {
        TierConfig {
            mode: TierMode::Auto,
            // Cranelift costs tens of microseconds per guest instruction here, the
            // interpreter tens of nanoseconds: compile only what runs often.
            baseline_threshold: 50,
            opt_threshold: 2000,
            code_cache_size: 256 << 20,
            max_region_blocks: 64,
            precise_faults: false,
            return_prediction: false,
        }
    }
}

/// Code-cache statistics (`vmrun --stats`).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct CacheStats {
    /// Dispatcher lookups of a guest PC.
    pub lookups: u64,
    /// Lookups that found a translation.
    pub hits: u64,
    /// Lookups that had to translate guest code to IR.
    pub misses: u64,
    /// Guest instructions translated to IR.
    pub ir_guest_insns: u64,
    /// Regions compiled by the baseline JIT.
    pub baseline_translations: u64,
    /// Regions compiled by the optimizing JIT.
    pub opt_translations: u64,
    /// Guest instructions compiled by the baseline JIT.
    pub baseline_guest_insns: u64,
    /// Guest instructions compiled by the optimizing JIT.
    pub opt_guest_insns: u64,
    /// Host code bytes generated.
    pub host_code_bytes: u64,
    /// Chain links made (an exit slot filled with a translation).
    pub chain_links_made: u64,
    /// Chain links broken (slots cleared by invalidation or eviction).
    pub chain_links_broken: u64,
    /// Translations dropped because guest code changed or was unmapped.
    pub invalidations: u64,
    /// Translations evicted because the code cache was full (cold: not entered since their
    /// code segment was last swept).
    pub evictions: u64,
    /// Translations kept when their code segment was reused (moved, not recompiled).
    pub evictions_survived: u64,
    /// Blocks promoted to the optimizing tier.
    pub tier_ups: u64,
    /// Regions Cranelift could not compile (left to the interpreter).
    pub compile_failures: u64,
    /// Time in the baseline compiler.
    pub baseline_compile_time: Duration,
    /// Time in the optimizing compiler (background thread).
    pub opt_compile_time: Duration,
    /// Blocks entered in the interpreter.
    pub interp_blocks: u64,
    /// Entries into translated code from the dispatcher.
    pub jit_entries: u64,
    /// Regions loaded from an AOT image.
    pub aot_regions: u64,
    /// Dispatcher entries into AOT image code (chained entries bypass the dispatcher).
    pub aot_entries: u64,
    /// AOT regions dropped because their guest code changed or was unmapped.
    pub aot_invalidations: u64,
}

/// One cached guest block.
struct Entry {
    block: Arc<Block>,
    count: u32,
    /// Host code address, or 0.
    native: u64,
    /// Bytes of host code at `native`.
    size: u32,
    /// Entered from the dispatcher (or installed) since its code segment was last swept.
    recent: bool,
    tier: u8,
    opt_queued: bool,
    /// Guest ranges the native code covers (several blocks for an optimized region).
    ranges: Vec<(u64, u64)>,
}

impl Entry {
    /// Forgets host code: back to tier 0, re-warming from a zero count.
    fn drop_native(&mut self) {
        self.native = 0;
        self.tier = 0;
        self.count = 0;
        self.opt_queued = false;
        self.ranges.truncate(1);
    }
}

/// Slots in the chain table.
const CHAIN_SLOTS: usize = 1 << 18;
/// Entries of the direct-mapped jump cache.
const JUMP_CACHE: usize = 4096;

/// What the dispatcher should run for a PC.
pub enum Runnable {
    /// Interpret this block.
    Interp(Arc<Block>),
    /// Call this host code.
    Native(u64),
}

/// Translations by guest PC, and the JIT machinery.
pub struct CodeCache {
    cfg: TierConfig,
    map: HashMap<u64, usize>,
    entries: Vec<Entry>,
    jump: Vec<Option<(u64, usize)>>,
    generation: u64,
    /// Chain slots the JIT assigned (slots `0..n` of an image are its own, see
    /// [`CodeCache::slot_of`]).
    slots: HashMap<u64, u32>,
    chain: Box<[u64]>,
    /// Whether any chain slot may be non-zero (a fresh table needs no clearing).
    chain_dirty: bool,
    /// Indirect-branch table: (guest pc, host code) pairs of optimized regions.
    indirect: Box<[u64]>,
    /// Host code of a region that only returns `CONTINUE` (filler of empty table entries).
    continue_stub: u64,
    code: Option<CodeMemory>,
    trampoline: Option<Trampoline>,
    baseline: Option<Compiler>,
    opt_sync: Option<Compiler>,
    background: Option<Background>,
    /// Statistics.
    pub stats: CacheStats,
    trace: bool,
    /// Code of an AOT image, if running one.
    aot: Option<Arc<AotCode>>,
    /// Which regions of `aot.regions` are live (entered); empty when none is.
    aot_live: Vec<bool>,
    /// The profile being recorded, if any (translated code is then instrumented).
    profile: Option<Arc<Recorder>>,
    /// Loads check the page table (the guest has a SIGSEGV handler, which needs precise
    /// faults) instead of relying on the host MMU.
    precise_loads: bool,
    /// The single block the dispatcher ran last (interpreted or baseline), if it ended with
    /// an indirect jump: its branch pc and the block.
    last_indirect: Option<(u64, Arc<Block>)>,
    /// Targets each indirect jump (`br`, e.g. a switch) was seen to reach while its block
    /// ran as a single block; optimized regions take them in and branch to them inside.
    indirect_seen: HashMap<u64, Vec<u64>>,
    /// Where each indirect jump's block seemed to read a jump table (base address, entry
    /// size: [`lower::table_base`] with the registers after it ran), by branch pc; optimized
    /// regions fold the tables found in read-only memory.
    table_bases: HashMap<u64, (u64, u8)>,
    /// Guest ranges of the jump tables handed to optimizing compiles: a write to one must
    /// also discard the results still in flight (no entry holds their ranges yet).
    folded_tables: Vec<(u64, u64)>,
}

/// Most targets remembered per indirect jump.
const INDIRECT_SEEN_MAX: usize = 64;

impl CodeCache {
    /// A cache for `cfg`, entering the code of `aot` (an image's) where it has some; falls
    /// back to the interpreter (with a warning) when the JIT cannot start on this host.
    pub fn new(
        mut cfg: TierConfig,
        trace: bool,
        aot: Option<Arc<AotCode>>,
        profile: Option<Arc<Recorder>>,
    ) -> CodeCache {
        // Tracing shows every instruction: interpreter only, no image code.
        let aot = aot.filter(|_| !trace);
        if trace {
            cfg.mode = TierMode::Interp;
        }
        // The image's exits use chain slots 0..n for its slot targets.
        let aot_slots = aot.as_ref().map_or(0, |a| a.slots.len());
        let aot_live = vec![true; aot.as_ref().map_or(0, |a| a.regions.len())];
        let mut cache = CodeCache {
            cfg,
            map: HashMap::new(),
            entries: Vec::new(),
            jump: vec![None; JUMP_CACHE],
            generation: 0,
            slots: HashMap::new(),
            chain: vec![0u64; CHAIN_SLOTS + aot_slots].into_boxed_slice(),
            chain_dirty: false,
            // Filled (empty keys, the continue stub) when the JIT starts, before any
            // translated code reads it.
            indirect: vec![0u64; 2 * lower::INDIRECT_ENTRIES as usize].into_boxed_slice(),
            continue_stub: 0,
            code: None,
            trampoline: None,
            baseline: None,
            opt_sync: None,
            background: None,
            stats: CacheStats {
                aot_regions: aot_live.len() as u64,
                ..CacheStats::default()
            },
            trace,
            aot,
            aot_live,
            profile,
            precise_loads: cfg.precise_faults,
            last_indirect: None,
            indirect_seen: HashMap::new(),
            table_bases: HashMap::new(),
            folded_tables: Vec::new(),
        };
        if cache.precise_loads {
            // Image code relies on the host MMU for its loads.
            cache.aot_live.clear();
        }
        // Image code is entered through the JIT's trampoline, even with `--tier interp`.
        if cfg.mode != TierMode::Interp || cache.aot.is_some() {
            if let Err(e) = cache.start_jit() {
                eprintln!("vmrun: warning: JIT unavailable ({e}); interpreting");
                cache.cfg.mode = TierMode::Interp;
                cache.aot = None;
                cache.aot_live.clear();
            }
        }
        cache
    }

    fn start_jit(&mut self) -> Result<(), jit::JitError> {
        let mut code = CodeMemory::new(self.cfg.code_cache_size)
            .map_err(|e| jit::JitError::Host(e.to_string()))?;
        let mut base = Compiler::new(Tier::Baseline)?;
        let tramp = base.trampoline()?;
        let addr = code
            .alloc(&tramp.code)
            .ok_or_else(|| jit::JitError::Host("code cache too small".into()))?;
        let stub = base.continue_stub()?;
        self.continue_stub = code
            .alloc(&stub.code)
            .ok_or_else(|| jit::JitError::Host("code cache too small".into()))?;
        code.reserve_current();
        fault::install();
        // SAFETY: `addr` holds the trampoline just compiled for this host with the C ABI
        // signature `Trampoline`; the code memory stays mapped as long as this cache.
        self.trampoline = Some(unsafe { std::mem::transmute::<usize, Trampoline>(addr as usize) });
        self.code = Some(code);
        self.baseline = Some(base);
        self.clear_chains();
        match self.cfg.mode {
            TierMode::Opt => self.opt_sync = Some(Compiler::new(Tier::Optimized)?),
            TierMode::Auto => self.background = Some(Background::start()?),
            _ => {}
        }
        Ok(())
    }

    /// Renews per-process JIT resources in the child of a fork: the code memory is a shared
    /// mapping (the parent keeps using it) and the compile thread did not survive the fork.
    pub fn after_fork(&mut self) {
        if let Some(bg) = self.background.take() {
            // Its thread does not exist in this process: joining it would hang.
            std::mem::forget(bg);
        }
        // Drop the child's view of the parent's code memory without touching it.
        self.code = None;
        self.trampoline = None;
        self.baseline = None;
        self.opt_sync = None;
        self.entries.iter_mut().for_each(Entry::drop_native);
        self.generation += 1;
        if self.cfg.mode != TierMode::Interp || self.aot.is_some() {
            if let Err(e) = self.start_jit() {
                eprintln!("vmrun: warning: JIT unavailable after fork ({e}); interpreting");
                self.cfg.mode = TierMode::Interp;
                self.aot = None;
                self.aot_live.clear();
            }
        }
    }

    /// Whether translated loads check the page table (see [`CodeCache::require_precise_loads`]).
    pub fn precise_loads(&self) -> bool {
        self.precise_loads
    }

    /// From now on translates loads with page-table checks, so every guest fault is precise
    /// (the guest installed a SIGSEGV handler). The caller then drops every translation
    /// made before (image code included: it relies on the host MMU).
    pub fn require_precise_loads(&mut self) {
        self.precise_loads = true;
    }

    /// The active tier mode.
    pub fn mode(&self) -> TierMode {
        self.cfg.mode
    }

    /// Host address of the chain table (for the JIT context).
    pub fn chain_table(&mut self) -> u64 {
        self.chain.as_mut_ptr() as u64
    }

    /// Host address of the AOT image's import table, 0 without an image (for the JIT context).
    pub fn aot_import_table(&self) -> u64 {
        self.aot.as_ref().map_or(0, |a| a.import_table())
    }

    /// Host address of the indirect-branch table (for the JIT context).
    pub fn indirect_table(&mut self) -> u64 {
        self.indirect.as_mut_ptr() as u64
    }

    /// Index of `pc`'s entry in the indirect-branch table (direct-mapped).
    fn indirect_index(pc: u64) -> usize {
        2 * ((pc >> 2) % lower::INDIRECT_ENTRIES) as usize
    }

    /// The key of an empty indirect-table entry at index `i`: an aligned pc that belongs to
    /// the next entry, so no branch target (any u64 a guest can produce) ever matches an
    /// empty entry (its code is the stub that returns to the dispatcher all the same).
    fn empty_indirect_key(i: usize) -> u64 {
        ((i as u64 / 2 + 1) % lower::INDIRECT_ENTRIES) << 2
    }

    fn set_indirect(&mut self, pc: u64, code: u64) {
        let i = Self::indirect_index(pc);
        self.indirect[i] = pc;
        self.indirect[i + 1] = code;
    }

    /// The entry trampoline, when the JIT runs.
    pub fn trampoline(&self) -> Option<Trampoline> {
        self.trampoline
    }

    fn slot(pc: u64) -> usize {
        (pc >> 2) as usize % JUMP_CACHE
    }

    /// Index of the entry for `pc`, translating the block on a miss.
    fn entry(&mut self, pc: u64, mem: &mut GuestMemory) -> usize {
        self.stats.lookups += 1;
        let s = Self::slot(pc);
        // Empty slots are `None`, not a reserved pc: every u64 is a pc a guest can branch to.
        if let Some((_, jidx)) = self.jump[s].filter(|(jpc, _)| *jpc == pc) {
            self.stats.hits += 1;
            return jidx;
        }
        let idx = match self.map.get(&pc) {
            Some(&i) => {
                self.stats.hits += 1;
                i
            }
            None => {
                self.stats.misses += 1;
                let limit = if self.trace { 1 } else { a64::MAX_BLOCK_INSNS };
                let block = a64::translate_block_limit(&mut |a| mem.fetch(a), pc, limit);
                mem.mark_code(block.pc, 4 * block.guest_insns as u64);
                self.stats.ir_guest_insns += block.guest_insns as u64;
                let ranges = vec![(block.guest_range().start, block.guest_range().end)];
                self.entries.push(Entry {
                    block: Arc::new(block),
                    count: 0,
                    native: 0,
                    size: 0,
                    recent: false,
                    tier: 0,
                    opt_queued: false,
                    ranges,
                });
                let i = self.entries.len() - 1;
                self.map.insert(pc, i);
                i
            }
        };
        self.jump[s] = Some((pc, idx));
        idx
    }

    /// Marks the guest code of the image's regions, so that writes to it invalidate them.
    pub fn mark_aot_code(&self, mem: &mut GuestMemory) {
        if let Some(aot) = &self.aot {
            for r in &aot.regions {
                for &(s, e) in &r.ranges {
                    mem.mark_code(s, e - s);
                }
            }
        }
    }

    /// Looks up `pc`, applies the tier policy, and says what to run.
    /// `regs`: the guest's X registers now (after the block that ran last).
    pub fn runnable(&mut self, pc: u64, regs: &[u64; 32], mem: &mut GuestMemory) -> Runnable {
        // Where the single block run last jumped to (image code in between: unknown).
        let last_indirect = self.last_indirect.take();
        if let Some(p) = &self.profile {
            p.entry(pc);
        }
        if let Some(code) = self.aot_code(pc) {
            self.stats.aot_entries += 1;
            // The indirect-branch table is direct-mapped: what reaches the dispatcher takes
            // the entry back, so hot targets win over colliding cold ones.
            self.set_indirect(pc, code);
            return Runnable::Native(code);
        }
        if self.aot.is_some() {
            log::trace!("not in the image: {pc:#x}");
        }
        let idx = self.entry(pc, mem);
        if let Some((site, block)) = last_indirect {
            let seen = self.indirect_seen.entry(site).or_default();
            if seen.len() < INDIRECT_SEEN_MAX && !seen.contains(&pc) {
                seen.push(pc);
            }
            if let std::collections::hash_map::Entry::Vacant(v) = self.table_bases.entry(site) {
                if let Some(t) = lower::table_base(&block, regs) {
                    v.insert(t);
                }
            }
        }
        let e = &mut self.entries[idx];
        e.count = e.count.saturating_add(1);
        let (count, tier, queued) = (e.count, e.tier, e.opt_queued);
        match self.cfg.mode {
            TierMode::Interp => {}
            TierMode::Baseline => {
                if tier == 0 {
                    self.compile_baseline(idx);
                }
            }
            TierMode::Opt => {
                if tier < 2 {
                    self.compile_opt_now(idx, mem);
                }
            }
            TierMode::Auto => {
                if tier == 0 && count >= self.cfg.baseline_threshold {
                    self.compile_baseline(idx);
                }
                if tier < 2 && count >= self.cfg.opt_threshold && !queued {
                    self.queue_opt(idx, mem);
                }
            }
        }
        let e = &self.entries[idx];
        // Single blocks return here after their indirect jump: remember where it went.
        if e.tier < 2 {
            if let Some(Op::JumpReg {
                kind: BranchKind::Jump,
                ..
            }) = e.block.ops.last()
            {
                self.last_indirect = e.block.last_insn_pc().map(|s| (s, e.block.clone()));
            }
        }
        if e.native != 0 {
            self.stats.jit_entries += 1;
            let (code, tier) = (e.native, e.tier);
            self.entries[idx].recent = true;
            if tier == 2 {
                self.set_indirect(pc, code);
            }
            Runnable::Native(code)
        } else {
            self.stats.interp_blocks += 1;
            Runnable::Interp(e.block.clone())
        }
    }

    /// Copies code into the cache; when the current code segment is full, sweeps the next
    /// ones until it fits (see [`Self::sweep_next_segment`]). `None` if it can never fit.
    fn install_code(&mut self, bytes: &[u8], pc: u64) -> Option<u64> {
        let code = self.code.as_mut()?;
        if bytes.len() > code.max_code() {
            log::debug!(
                "translation of {pc:#x} ({} bytes) exceeds a code-cache segment",
                bytes.len()
            );
            return None;
        }
        // Each sweep clears the marks of what it keeps, so two rounds free a segment.
        let mut sweeps = 2 * code.segments() + 1;
        let a = loop {
            if let Some(a) = self.code.as_mut()?.alloc(bytes) {
                break a;
            }
            if sweeps == 0 {
                return None;
            }
            sweeps -= 1;
            self.sweep_next_segment();
        };
        self.stats.host_code_bytes += bytes.len() as u64;
        perf_map_add(a, bytes.len(), pc);
        Some(a)
    }

    /// Records that entry `idx` now runs `size` bytes of host code at `addr` (just
    /// installed: it counts as recently entered).
    fn set_native(&mut self, idx: usize, addr: u64, size: usize, tier: u8) {
        let e = &mut self.entries[idx];
        e.native = addr;
        e.size = size as u32;
        e.tier = tier;
        e.recent = true;
    }

    /// Reuses the next segment of the code memory (the oldest): its translations entered
    /// since the last sweep are moved to its start and kept, the others are dropped (their
    /// blocks go back to tier 0 and re-warm); the chain slots and indirect-branch entries of
    /// the optimized regions among them follow. Safe because no translated code runs while
    /// the dispatcher runs.
    fn sweep_next_segment(&mut self) {
        let Some(code) = self.code.as_mut() else {
            return;
        };
        let seg = code.next_segment();
        let mut inside: Vec<usize> = (0..self.entries.len())
            .filter(|&i| seg.contains(&self.entries[i].native))
            .collect();
        inside.sort_by_key(|&i| self.entries[i].native);
        let mut regions = Vec::new();
        for i in inside {
            let e = &mut self.entries[i];
            let region = e.tier == 2;
            let now = if std::mem::take(&mut e.recent) {
                e.native = code.relocate(e.native, e.size as usize);
                perf_map_add(e.native, e.size as usize, e.block.pc);
                self.stats.evictions_survived += 1;
                Some(e.native)
            } else {
                e.drop_native();
                self.stats.evictions += 1;
                None
            };
            if region {
                regions.push((e.block.pc, now));
            }
        }
        for (pc, now) in regions {
            self.relink_region(pc, now);
        }
    }

    /// Points the chain slot and the indirect-branch entry of the optimized region at `pc`
    /// to its new code, or unlinks them when it was dropped (`None`).
    fn relink_region(&mut self, pc: u64, code: Option<u64>) {
        if let Some(s) = self.slot_of(pc) {
            match code {
                Some(c) => self.link_slot(s, c),
                None if self.chain[s as usize] != 0 => {
                    self.chain[s as usize] = 0;
                    self.stats.chain_links_broken += 1;
                }
                None => {}
            }
        }
        let i = Self::indirect_index(pc);
        if self.indirect[i] == pc {
            match code {
                Some(c) => self.indirect[i + 1] = c,
                None => {
                    self.indirect[i] = Self::empty_indirect_key(i);
                    self.indirect[i + 1] = self.continue_stub;
                }
            }
        }
    }

    /// Clears the chain and indirect-branch tables and links the optimized regions that
    /// remain (and the live image regions) again.
    fn relink(&mut self) {
        self.clear_chains();
        let live: Vec<(u64, u64)> = self
            .entries
            .iter()
            .filter(|e| e.tier == 2 && e.native != 0)
            .map(|e| (e.block.pc, e.native))
            .collect();
        for (pc, code) in live {
            if let Some(s) = self.slot_of(pc) {
                self.link_slot(s, code);
            }
            self.set_indirect(pc, code);
        }
    }

    fn clear_chains(&mut self) {
        if std::mem::take(&mut self.chain_dirty) {
            let filled = self.chain.iter().filter(|s| **s != 0).count() as u64;
            self.stats.chain_links_broken += filled;
            self.chain.iter_mut().for_each(|s| *s = 0);
        }
        // An empty entry points at a stub that just returns to the dispatcher, so even a
        // guest branching to the filler key reaches correct code.
        let stub = self.continue_stub;
        for (i, e) in self.indirect.chunks_mut(2).enumerate() {
            e[0] = Self::empty_indirect_key(2 * i);
            e[1] = stub;
        }
        self.link_aot();
    }

    /// Links the live AOT regions into the chain slots and the indirect-branch table.
    fn link_aot(&mut self) {
        let Some(aot) = self.aot.clone() else {
            return;
        };
        let live = std::mem::take(&mut self.aot_live);
        for (r, _) in aot.regions.iter().zip(&live).filter(|(_, l)| **l) {
            self.set_indirect(r.pc, r.code);
            if let Some(s) = r.slot {
                self.link_slot(s, r.code);
            }
        }
        self.aot_live = live;
    }

    /// Points chain slot `s` at `code`.
    fn link_slot(&mut self, s: u32, code: u64) {
        self.chain[s as usize] = code;
        self.chain_dirty = true;
        self.stats.chain_links_made += 1;
    }

    /// The chain slot of exits to `target`, if one was assigned: the image's own slots come
    /// first, then those the JIT assigned.
    fn slot_of(&self, target: u64) -> Option<u32> {
        self.aot
            .as_ref()
            .and_then(|a| a.slots.binary_search(&target).ok())
            .map(|i| i as u32)
            .or_else(|| self.slots.get(&target).copied())
    }

    /// Host code of the live image region at `pc`, if any.
    fn aot_code(&self, pc: u64) -> Option<u64> {
        let aot = self.aot.as_ref()?;
        let i = aot.find(pc)?;
        self.aot_live
            .get(i)
            .copied()
            .unwrap_or(false)
            .then(|| aot.regions[i].code)
    }

    fn compile_baseline(&mut self, idx: usize) {
        if self.baseline.is_none() {
            return;
        }
        let block = self.entries[idx].block.clone();
        if !jit_allowed(block.pc) {
            self.entries[idx].tier = 1;
            return;
        }
        let mut env = self.env_for(&[&block], HashMap::new());
        let Some(comp) = self.baseline.as_mut() else {
            return;
        };
        match comp.compile(&[&block], &mut env) {
            Ok(c) => {
                self.stats.baseline_compile_time += c.compile_time;
                match self.install_code(&c.code, block.pc) {
                    Some(addr) => {
                        self.set_native(idx, addr, c.code.len(), 1);
                        self.stats.baseline_translations += 1;
                        self.stats.baseline_guest_insns += block.guest_insns as u64;
                    }
                    // Too big for the code cache: stay in the interpreter.
                    None => self.entries[idx].tier = 1,
                }
            }
            Err(err) => {
                log::warn!("{err}");
                self.stats.compile_failures += 1;
                // Do not try again: stay in the interpreter for this block.
                self.entries[idx].tier = 1;
            }
        }
    }

    /// Collects the hot blocks reachable from `idx` through direct branches.
    fn form_region(&mut self, idx: usize, mem: &mut GuestMemory) -> Vec<Arc<Block>> {
        let entry_pc = self.entries[idx].block.pc;
        let mut out = vec![self.entries[idx].block.clone()];
        let mut seen: HashSet<u64> = HashSet::from([entry_pc]);
        // A block's direct successors, and with return prediction the return site of its
        // call (guest calls are host calls: they return into the region).
        let rp = self.cfg.return_prediction;
        let next = move |b: &Block| {
            let ret = b.return_site().filter(|_| rp);
            b.direct_successors().into_iter().chain(ret)
        };
        let mut queue: VecDeque<u64> = next(&self.entries[idx].block).collect();
        let mut insns = self.entries[idx].block.guest_insns as usize;
        while let Some(pc) = queue.pop_front() {
            if out.len() >= self.cfg.max_region_blocks || insns > 2000 {
                break;
            }
            if !seen.insert(pc) || pc.abs_diff(entry_pc) > 1 << 20 {
                continue;
            }
            // Only blocks that have run (in any tier): the region follows hot paths. In
            // `--tier opt` nothing has run yet, so take every reachable block.
            let known = self.map.get(&pc).copied();
            let i = match known {
                Some(i) if self.entries[i].count > 0 || self.cfg.mode == TierMode::Opt => i,
                None if self.cfg.mode == TierMode::Opt => self.entry(pc, mem),
                _ => continue,
            };
            let b = self.entries[i].block.clone();
            insns += b.guest_insns as usize;
            queue.extend(next(&b));
            if let Some(seen) = b.last_insn_pc().and_then(|s| self.indirect_seen.get(&s)) {
                queue.extend(seen);
            }
            out.push(b);
        }
        // A recording run keeps the blocks whole: the profile counts blocks as the
        // interpreter runs them, (pc, length), identically in every tier.
        if self.profile.is_none() {
            end_at_other_starts(&mut out);
        }
        out
    }

    /// The lowering environment of `blocks`: their exits' chain `slots`, and their profile
    /// counters when recording.
    fn env_for(&self, blocks: &[&Block], slots: HashMap<u64, u32>) -> JitEnv {
        let counters = match &self.profile {
            Some(p) => blocks
                .iter()
                .filter_map(|b| Some((b.pc, p.counter(b)?)))
                .collect(),
            None => HashMap::new(),
        };
        let indirect = blocks
            .iter()
            .filter_map(|b| {
                let site = b.last_insn_pc()?;
                Some((site, self.indirect_seen.get(&site)?.clone()))
            })
            .collect();
        JitEnv {
            slots,
            counters,
            profiling: self.profile.is_some(),
            host_fault_loads: !self.precise_loads,
            host_calls: self.cfg.return_prediction,
            indirect,
            tables: HashMap::new(),
        }
    }

    /// [`Self::env_for`] an optimized region: also the jump tables its switches read.
    fn opt_env_for(
        &mut self,
        blocks: &[&Block],
        slots: HashMap<u64, u32>,
        mem: &mut GuestMemory,
    ) -> JitEnv {
        let mut env = self.env_for(blocks, slots);
        if self.profile.is_none() {
            env.tables = blocks
                .iter()
                .filter_map(|b| {
                    let site = b.last_insn_pc()?;
                    let &(base, size) = self.table_bases.get(&site)?;
                    Some((site, fixed_table(mem, base, size)?))
                })
                .collect();
            for t in env.tables.values() {
                let r = t.range();
                if !self.folded_tables.contains(&r) {
                    self.folded_tables.push(r);
                }
            }
        }
        env
    }

    fn slots_for(&mut self, blocks: &[&Block]) -> HashMap<u64, u32> {
        let mut slots = HashMap::new();
        let aot_slots = self.aot.as_ref().map_or(0, |a| a.slots.len());
        for t in jit::exit_targets(blocks) {
            let s = match self.slot_of(t) {
                Some(s) => s,
                None => {
                    let n = aot_slots + self.slots.len();
                    if n >= self.chain.len() {
                        continue;
                    }
                    self.slots.insert(t, n as u32);
                    n as u32
                }
            };
            slots.insert(t, s);
            // Link at once when the target already has optimized code.
            if let Some(&ti) = self.map.get(&t) {
                let te = &self.entries[ti];
                if te.tier == 2 && self.chain[s as usize] == 0 {
                    self.link_slot(s, te.native);
                }
            }
        }
        slots
    }

    fn queue_opt(&mut self, idx: usize, mem: &mut GuestMemory) {
        if self.background.is_none() {
            return;
        }
        self.entries[idx].opt_queued = true;
        let blocks = self.form_region(idx, mem);
        let refs: Vec<&Block> = blocks.iter().map(|b| &**b).collect();
        let slots = self.slots_for(&refs);
        let job = Job {
            pc: self.entries[idx].block.pc,
            env: self.opt_env_for(&refs, slots, mem),
            blocks,
            generation: self.generation,
        };
        if let Some(bg) = self.background.as_ref() {
            bg.submit(job);
        }
    }

    fn compile_opt_now(&mut self, idx: usize, mem: &mut GuestMemory) {
        let blocks = self.form_region(idx, mem);
        let refs: Vec<&Block> = blocks.iter().map(|b| &**b).collect();
        let slots = self.slots_for(&refs);
        let mut env = self.opt_env_for(&refs, slots, mem);
        let Some(comp) = self.opt_sync.as_mut() else {
            return;
        };
        let result = comp.compile(&refs, &mut env);
        let done = jit::Done {
            pc: blocks[0].pc,
            generation: self.generation,
            guest_insns: refs.iter().map(|b| b.guest_insns as u64).sum(),
            ranges: jit::region_ranges(&refs, &env),
            result,
        };
        self.install_opt(done);
        // A failed compile must not be retried on every execution.
        self.entries[idx].tier = 2;
    }

    /// Installs finished background compiles.
    pub fn poll_background(&mut self) {
        while let Some(done) = self.background.as_ref().and_then(|b| b.poll()) {
            self.install_opt(done);
        }
    }

    fn install_opt(&mut self, done: jit::Done) {
        if done.generation != self.generation {
            return;
        }
        let Some(&idx) = self.map.get(&done.pc) else {
            return;
        };
        match done.result {
            Ok(c) => {
                self.stats.opt_compile_time += c.compile_time;
                let Some(addr) = self.install_code(&c.code, done.pc) else {
                    return;
                };
                self.set_native(idx, addr, c.code.len(), 2);
                self.entries[idx].ranges = done.ranges;
                self.stats.opt_translations += 1;
                self.stats.opt_guest_insns += done.guest_insns;
                self.stats.tier_ups += 1;
                if let Some(s) = self.slot_of(done.pc) {
                    self.link_slot(s, addr);
                }
                self.set_indirect(done.pc, addr);
            }
            Err(err) => {
                log::warn!("{err}");
                self.stats.compile_failures += 1;
            }
        }
    }

    /// Drops every translation overlapping `[start, end)`; returns how many.
    pub fn invalidate(&mut self, start: u64, end: u64) -> usize {
        let overlaps = |e: &Entry| e.ranges.iter().any(|&(s, t)| s < end && t > start);
        let before = self.entries.len();
        let mut dropped_native = self.entries.iter().any(|e| e.native != 0 && overlaps(e));
        self.entries.retain(|e| !overlaps(e));
        let mut removed = before - self.entries.len();
        if let Some(aot) = &self.aot {
            let gone = aot.invalidate(&mut self.aot_live, start, end);
            self.stats.aot_invalidations += gone as u64;
            removed += gone;
            dropped_native |= gone > 0;
        }
        let table_written = self
            .folded_tables
            .iter()
            .any(|&(s, t)| s < end && t > start);
        if removed == 0 && !table_written {
            return 0;
        }
        self.map = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.block.pc, i))
            .collect();
        self.jump.iter_mut().for_each(|j| *j = None);
        // A region compiling in the background may contain a dropped block: discard every
        // result in flight (and let those blocks queue again).
        self.generation += 1;
        for e in &mut self.entries {
            e.opt_queued = e.tier == 2;
        }
        if dropped_native {
            // Chained code may jump into what was dropped: unlink everything, then relink
            // the optimized regions that remain.
            self.relink();
        }
        self.stats.invalidations += removed as u64;
        removed
    }

    /// Waits for queued optimizing compiles (tests and `--tier opt` determinism).
    pub fn drain_background(&mut self) {
        let queued = self
            .entries
            .iter()
            .filter(|e| e.opt_queued && e.tier < 2)
            .count();
        for _ in 0..queued {
            match self.background.as_ref().and_then(|b| b.wait()) {
                Some(done) => self.install_opt(done),
                None => break,
            }
        }
    }
}

/// Debugging aid for bisecting JIT bugs: `VMC_JIT_PC_RANGE=LO-HI` (hex) restricts the
/// baseline JIT to blocks starting in [LO, HI); everything else is interpreted.
fn jit_allowed(pc: u64) -> bool {
    use std::sync::OnceLock;
    static RANGE: OnceLock<Option<(u64, u64)>> = OnceLock::new();
    let range = RANGE.get_or_init(|| {
        let v = std::env::var("VMC_JIT_PC_RANGE").ok()?;
        let (lo, hi) = v.split_once('-')?;
        let p = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok();
        Some((p(lo)?, p(hi)?))
    });
    range.is_none_or(|(lo, hi)| (lo..hi).contains(&pc))
}

/// Converts a translated-code exit into the interpreter's exit type.
pub fn native_exit(
    code: i64,
    cpu: &CpuState,
    ctx: &JitContext,
    fault: Option<vmc_compiler::Fault>,
) -> vmc_compiler::Exit {
    use vmc_compiler::Exit;
    match code {
        lower::exit::SYSCALL => Exit::Syscall,
        lower::exit::FAULT => Exit::Fault {
            pc: cpu.pc,
            fault: fault.unwrap_or(vmc_compiler::Fault::Segv {
                addr: 0,
                write: false,
            }),
        },
        lower::exit::TRAP => Exit::Trap {
            kind: lower::trap_from_code(ctx.trap_kind),
            pc: cpu.pc,
            insn: ctx.trap_insn as u32,
        },
        _ => Exit::Continue(BranchKind::Jump),
    }
}

/// Ends every block of a region where another of its blocks starts inside it (with a jump
/// there). A block entered above a loop head before the loop's back edge was seen runs on
/// through the head; kept whole, the region held two copies of the loop's first blocks, the
/// loop seemed entered in its middle, and every iteration stored the registers.
fn end_at_other_starts(blocks: &mut [Arc<Block>]) {
    let mut starts: Vec<u64> = blocks.iter().map(|b| b.pc).collect();
    starts.sort_unstable();
    for b in blocks.iter_mut() {
        let inner = starts[starts.partition_point(|&p| p <= b.pc)..]
            .first()
            .copied()
            .filter(|&p| b.has_inner_insn(p));
        if let Some(p) = inner {
            Arc::make_mut(b).end_before(p);
        }
    }
}

/// The entries of the jump table at guest `base` (`size` bytes each) while they lie in
/// readable, non-writable memory (up to [`lower::MAX_TABLE_ENTRIES`]; the caller does not
/// know the bound), marked as code so that changing them invalidates the code folding them.
fn fixed_table(mem: &mut GuestMemory, base: u64, size: u8) -> Option<lower::TableData> {
    use vmc_compiler::layout::perm;
    let mut entries = Vec::new();
    for i in 0..lower::MAX_TABLE_ENTRIES as u64 {
        let a = base.checked_add(i * u64::from(size))?;
        let fixed = |p: u8| p & perm::R != 0 && p & perm::W == 0;
        if !fixed(mem.perm(a)) || !fixed(mem.perm(a.saturating_add(u64::from(size) - 1))) {
            break;
        }
        let Ok(bytes) = mem.slice(a, u64::from(size)) else {
            break;
        };
        let mut v = [0u8; 8];
        v[..bytes.len()].copy_from_slice(bytes);
        entries.push(u64::from_le_bytes(v));
    }
    if entries.is_empty() {
        return None;
    }
    mem.mark_code(base, entries.len() as u64 * u64::from(size));
    Some(lower::TableData {
        addr: base,
        size,
        entries,
    })
}

/// VMC_PERF_MAP=1: names each translation for `perf report` in /tmp/perf-PID.map.
fn perf_map_add(addr: u64, len: usize, pc: u64) {
    use std::io::Write;
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if !*ENABLED.get_or_init(|| std::env::var_os("VMC_PERF_MAP").is_some()) {
        return;
    }
    let path = format!("/tmp/perf-{}.map", std::process::id());
    let line = format!("{addr:x} {len:x} jit_{pc:x}\n");
    let r = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = r {
        log::warn!("{path}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block entered above a loop head runs through it until the region is formed; then
    /// it ends at the head, so the loop's code is in the region once.
    #[test]
    fn region_blocks_end_where_another_starts() {
        // 0x1000: movz x0, #0; 0x1004: add x0, x0, #1; cmp x0, #10; b.ne 0x1004; ret
        let code = [
            0xd2800000u32,
            0x91000400,
            0xf100281f,
            0x54ffffc1,
            0xd65f03c0,
        ];
        let mut fetch = |pc: u64| code.get(((pc - 0x1000) / 4) as usize).copied();
        let above = Arc::new(vmc_compiler::a64::translate_block(&mut fetch, 0x1000));
        let head = Arc::new(vmc_compiler::a64::translate_block(&mut fetch, 0x1004));
        assert_eq!((above.guest_insns, head.guest_insns), (4, 3));
        let mut region = vec![above, head.clone()];
        end_at_other_starts(&mut region);
        assert_eq!(region[0].guest_insns, 1);
        assert_eq!(
            region[0].ops.last(),
            Some(&Op::Jump {
                target: 0x1004,
                kind: BranchKind::Jump
            })
        );
        assert_eq!(region[0].direct_successors(), vec![0x1004]);
        assert_eq!(*region[1], *head, "the block at the head is whole");
    }
}
