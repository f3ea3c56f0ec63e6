//! Whole-binary translation: code discovery, partition of the discovered blocks into
//! regions, parallel Cranelift compilation (rayon), and the image (cranelift-object).
//!
//! Regions: every address the runtime may enter from outside straight-line flow (function
//! entries, return sites, jump-table targets, system-call continuations) heads a region; a
//! block reachable from two heads, or beyond the size limit, heads its own. So every region
//! has a single entry and no block is translated twice; loops inside a region become host
//! loops, and exits to other regions go through chain slots (see [`crate::lower`]) that the
//! runtime fills with the target's code, so they stay unlinkable on invalidation.
//!
//! Output is deterministic: regions are compiled in parallel but emitted in PC order, and
//! Cranelift is deterministic, so `-j 1` and `-j 8` give byte-identical images.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use cranelift_codegen::ir::{self, types, InstBuilder, MemFlagsData, UserFuncName};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_module::{Linkage, Module};
use cranelift_object::{ObjectBuilder, ObjectModule};
use rayon::prelude::*;

use super::discover::{discover, discover_with, DiscoverError, Discovery};
use super::image::{self, ImageStats, Map, Meta, RegionEntry};
use super::pgo::{self, Guide};
use super::sign::{KeyError, SigningKey};
use crate::ir::{Block, BranchKind, Op};
use crate::layout;
use crate::lower::{self, Callee, Env, Region};

/// Most blocks in one region (bigger functions are split at block boundaries).
pub const MAX_REGION_BLOCKS: usize = 256;

/// How to translate.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Worker threads (0: one per core).
    pub jobs: usize,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Profile to guide the translation (see [`super::pgo`]).
    pub profile: Option<std::sync::Arc<vmc_profiles::Profile>>,
    /// Return-address prediction ([`lower::Env::host_calls`]).
    pub return_prediction: bool,
    /// The key that signs the image; `None`: the user's own ([`SigningKey::for_user`],
    /// created on first use).
    pub key: Option<std::sync::Arc<SigningKey>>,
}

/// A translated image and what it took.
pub struct Output {
    /// The signed image bytes.
    pub image: Vec<u8>,
    /// Its metadata.
    pub meta: Meta,
    /// Wall time of the whole translation.
    pub time: Duration,
    /// Wall time of code discovery.
    pub discover_time: Duration,
    /// Regions Cranelift rejected (left to the runtime's JIT).
    pub failed_regions: Vec<(u64, String)>,
}

/// Why a translation failed. One line each; the caller names the file.
#[derive(Debug, thiserror::Error)]
pub enum TranslateError {
    /// The guest binary could not be analysed.
    #[error(transparent)]
    Discover(#[from] DiscoverError),
    /// Cranelift does not support this host.
    #[error("host not supported by Cranelift: {0}")]
    Host(String),
    /// The worker pool could not start.
    #[error("cannot start {0} worker threads: {1}")]
    Threads(usize, String),
    /// The object file could not be written.
    #[error("cannot write the object file: {0}")]
    Object(String),
    /// The profile does not fit this guest binary.
    #[error("profile: {0}")]
    Profile(#[from] vmc_profiles::ProfileError),
    /// The signing key could not be read or created.
    #[error("signing key: {0}")]
    Key(#[from] KeyError),
}

/// Translates the guest binary `guest` (named `name` in messages and metadata).
pub fn translate(guest: &[u8], name: &str, opts: &Options) -> Result<Output, TranslateError> {
    let t0 = Instant::now();
    // The key first: a translation that cannot be signed is not worth doing.
    let key = match &opts.key {
        Some(k) => k.clone(),
        None => std::sync::Arc::new(SigningKey::for_user()?),
    };
    let guide = match &opts.profile {
        Some(p) => {
            p.check_guest(&vmc_profiles::sha256(guest))?;
            Some(Guide::new(p))
        }
        None => None,
    };
    let disc = match &guide {
        Some(g) => discover_with(guest, g.hints())?,
        None => discover(guest)?,
    };
    let discover_time = t0.elapsed();
    let tables = jump_tables(&disc);
    let folds = fixed_tables(&disc);
    let mut regions = match &guide {
        Some(g) => guided_regions(&disc, g, &tables),
        None => partition(&disc),
    };
    if let Some(g) = &guide {
        // Hot code first, packed together; cold regions after it.
        regions.sort_by_key(|r| {
            let pc = disc.blocks[r[0]].pc;
            (g.count(pc) == 0, pc)
        });
    }
    let region_entries = entries(&disc, &regions);
    let isa = layout::host_isa(true).map_err(TranslateError::Host)?;

    let builder = ObjectBuilder::new(
        isa.clone(),
        "vmc-image",
        cranelift_module::default_libcall_names(),
    )
    .map_err(|e| TranslateError::Object(e.to_string()))?;
    let mut module = ObjectModule::new(builder);
    let obj_err = |e: cranelift_module::ModuleError| TranslateError::Object(e.to_string());
    // The import list: runtime entry points, then the helpers the code calls (sorted).
    let mut helpers: Vec<&'static str> = disc
        .blocks
        .iter()
        .flat_map(|b| &b.ops)
        .filter_map(|op| match op {
            Op::Call { helper, .. } => Some(helper.name),
            _ => None,
        })
        .collect();
    helpers.sort_unstable();
    helpers.dedup();
    let helper_ids: HashMap<&'static str, u32> = helpers
        .iter()
        .enumerate()
        .map(|(i, h)| (*h, (image::CALLEES.len() + i) as u32))
        .collect();
    let imports: Vec<String> = image::CALLEES
        .iter()
        .map(|(_, sym)| sym.to_string())
        .chain(
            helpers
                .iter()
                .map(|h| format!("{}{h}", image::HELPER_PREFIX)),
        )
        .collect();
    let mut func_ids = Vec::with_capacity(regions.len());
    for r in &regions {
        let pc = disc.blocks[r[0]].pc;
        let id = module
            .declare_function(
                &image::region_symbol(pc),
                Linkage::Export,
                &lower::region_signature(),
            )
            .map_err(obj_err)?;
        func_ids.push(id);
    }
    // Chain slots: every exit target of every region, sorted.
    let mut slots: Vec<u64> = regions
        .iter()
        .flat_map(|r| {
            let blocks: Vec<&Block> = r.iter().map(|&i| &disc.blocks[i]).collect();
            crate::ir::exit_targets(&blocks)
        })
        .collect();
    slots.sort_unstable();
    slots.dedup();

    // Compile in parallel; results come back in region order.
    let progress = if opts.progress {
        let pb = indicatif::ProgressBar::new(regions.len() as u64);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} translating {msg} [{bar:40}] {pos}/{len} regions ({eta})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        pb.set_message(name.to_string());
        pb
    } else {
        indicatif::ProgressBar::hidden()
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs)
        .build()
        .map_err(|e| TranslateError::Threads(opts.jobs, e.to_string()))?;
    let shared = Shared {
        helper_ids: &helper_ids,
        slots: &slots,
        tables: &tables,
        folds: &folds,
        guide: guide.as_ref(),
        host_calls: opts.return_prediction,
    };
    let compiled: Vec<Result<Compiled, String>> = pool.install(|| {
        regions
            .par_iter()
            .zip(func_ids.par_iter())
            .zip(region_entries.par_iter())
            .map_init(FunctionBuilderContext::new, |fctx, ((r, id), entries)| {
                let blocks: Vec<&Block> = r.iter().map(|&i| &disc.blocks[i]).collect();
                // A panic in the lowering or Cranelift (a bug a hostile binary could reach)
                // fails this region only: it is left to the JIT, the image is still written.
                let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    compile_region(&blocks, entries, id.as_u32(), &shared, &*isa, fctx)
                }))
                .unwrap_or_else(|payload| {
                    *fctx = FunctionBuilderContext::new();
                    Err(format!("internal error: {}", panic_message(&*payload)))
                });
                progress.inc(1);
                out
            })
            .collect()
    });
    progress.finish_and_clear();
    log::info!(
        "{name}: discovery {:.2} s, compile done at {:.2} s ({} regions)",
        discover_time.as_secs_f64(),
        t0.elapsed().as_secs_f64(),
        regions.len()
    );

    let mut map = Map {
        regions: Vec::new(),
        slots,
        imports,
    };
    // Defined regions' functions, in map order (their code offsets are known once the
    // object is finished).
    let mut defined = Vec::new();
    let mut defined_entries = Vec::new();
    let mut failed_regions = Vec::new();
    let mut stats = ImageStats {
        blocks: disc.blocks.len() as u64,
        guest_insns: disc.stats.guest_insns,
        exec_bytes: disc.stats.exec_bytes,
        coverage: disc.stats.coverage(),
        functions: disc.stats.functions,
        noreturn: disc.stats.noreturn,
        jump_tables: disc.stats.jump_tables,
        slots: map.slots.len() as u64,
        ..ImageStats::default()
    };
    for (((r, id), c), aliases) in regions
        .iter()
        .zip(&func_ids)
        .zip(compiled)
        .zip(&region_entries)
    {
        let pc = disc.blocks[r[0]].pc;
        match c {
            Ok(c) => {
                module
                    .define_function_bytes(*id, c.align, &c.code, &[])
                    .map_err(obj_err)?;
                defined.push(*id);
                stats.host_code_bytes += c.code.len() as u64;
                let mut ranges: Vec<(u64, u64)> = r
                    .iter()
                    .map(|&i| {
                        let g = disc.blocks[i].guest_range();
                        (g.start, g.end)
                    })
                    .collect();
                // Folded jump tables: writing one invalidates the code, as writing code does.
                ranges.extend(r.iter().filter_map(|&i| {
                    let t = folds.get(&disc.blocks[i].last_insn_pc()?)?;
                    Some(t.range())
                }));
                ranges.sort_unstable();
                // Blocks no longer overlap: merge the adjacent ones.
                ranges.dedup_by(|next, prev| {
                    let joined = next.0 <= prev.1;
                    if joined {
                        prev.1 = prev.1.max(next.1);
                    }
                    joined
                });
                map.regions.push(RegionEntry {
                    pc,
                    code: 0,
                    guest_insns: r.iter().map(|&i| disc.blocks[i].guest_insns).sum(),
                    ranges,
                });
                defined_entries.push(aliases);
            }
            Err(msg) => {
                log::warn!("region {pc:#x}: {msg}");
                failed_regions.push((pc, msg));
            }
        }
    }
    stats.regions = map.regions.len() as u64;
    stats.entries = defined_entries.iter().map(|e| e.len() as u64).sum();
    stats.profile_entries = disc.stats.profile_entries;
    let translated: u64 = regions.iter().map(|r| r.len() as u64).sum();
    stats.duplicated_blocks = translated.saturating_sub(stats.blocks);
    let mut meta = Meta::new(guest, name, disc.entry, disc.bias);
    meta.stats = stats;
    meta.profile_sha256 = opts
        .profile
        .as_ref()
        .map(|p| vmc_profiles::hex(&p.digest()));
    meta.return_prediction = opts.return_prediction;

    let mut product = module.finish();
    // The code section starts (and ends) on a page boundary of the file: vmrun maps it.
    let text = product
        .object
        .section_id(object::write::StandardSection::Text);
    product
        .object
        .append_section_data(text, &[], image::CODE_ALIGN);
    for (r, id) in map.regions.iter_mut().zip(&defined) {
        let (sym, _) = product.functions[*id]
            .ok_or_else(|| TranslateError::Object(format!("region {:#x} has no symbol", r.pc)))?;
        r.code = product.object.symbol(sym).value;
    }
    // Secondary entries: the same code (it dispatches on the pc), no instructions or ranges
    // of their own (the runtime invalidates them with the region that has that code).
    let aliases: Vec<RegionEntry> = map
        .regions
        .iter()
        .zip(&defined_entries)
        .flat_map(|(r, pcs)| {
            pcs.iter().map(|&pc| RegionEntry {
                pc,
                code: r.code,
                guest_insns: 0,
                ranges: Vec::new(),
            })
        })
        .collect();
    map.regions.extend(aliases);
    map.regions.sort_by_key(|r| r.pc);
    let meta_json =
        serde_json::to_vec_pretty(&meta).map_err(|e| TranslateError::Object(e.to_string()))?;
    for (name, data, align) in [
        (image::META_SECTION, meta_json.as_slice(), 8),
        (image::MAP_SECTION, &map.encode(), 8),
        (image::GUEST_SECTION, guest, 16),
    ] {
        let id = product.object.add_section(
            Vec::new(),
            name.as_bytes().to_vec(),
            object::SectionKind::ReadOnlyData,
        );
        product.object.append_section_data(id, data, align);
    }
    log::info!(
        "{name}: object built at {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    let bytes = product
        .emit()
        .map_err(|e| TranslateError::Object(e.to_string()))?;
    Ok(Output {
        image: image::seal(bytes, &key),
        meta,
        time: t0.elapsed(),
        discover_time,
        failed_regions,
    })
}

/// Machine code of one region.
struct Compiled {
    code: Vec<u8>,
    align: u64,
}

/// Symbol numbering shared by all workers.
struct Shared<'a> {
    /// Import-table index of each helper.
    helper_ids: &'a HashMap<&'static str, u32>,
    slots: &'a [u64],
    /// Targets of the recovered jump tables, by the address of their indirect branch.
    tables: &'a HashMap<u64, Vec<u64>>,
    /// The recovered jump tables in read-only memory, by the address of their branch.
    folds: &'a HashMap<u64, lower::TableData>,
    /// The profile's guidance, if any.
    guide: Option<&'a Guide>,
    /// Guest calls are host calls ([`lower::Env::host_calls`]).
    host_calls: bool,
}

/// The lowering environment of one region: runtime entry points and helpers come from the
/// import table (no relocations), exits use the image's chain slots.
struct AotEnv<'a> {
    shared: &'a Shared<'a>,
    /// Return sites of the calls inside the region (targets of its returns).
    return_sites: Vec<u64>,
}

/// Entry `index` of the import table ([`lower::JitContext::imports`]): two loads that never trap
/// and read memory that does not change while code runs.
fn import(b: &mut FunctionBuilder, index: u32) -> ir::Value {
    let flags = MemFlagsData::trusted().with_readonly();
    let frame = b.ins().get_pinned_reg(types::I64);
    let table = b
        .ins()
        .load(types::I64, flags, frame, lower::IMPORTS_OFFSET);
    b.ins().load(types::I64, flags, table, 8 * index as i32)
}

impl Env for AotEnv<'_> {
    fn callee(&mut self, b: &mut FunctionBuilder, c: Callee) -> ir::Value {
        import(b, image::callee_import(c))
    }

    fn helper(&mut self, b: &mut FunctionBuilder, h: &'static crate::ir::Helper) -> ir::Value {
        import(b, self.shared.helper_ids[h.name])
    }

    fn indirect_targets(&mut self, branch_pc: u64, kind: BranchKind) -> Vec<u64> {
        let mut out = self
            .shared
            .tables
            .get(&branch_pc)
            .cloned()
            .unwrap_or_default();
        if let Some(g) = self.shared.guide {
            out.extend(g.hot_targets(branch_pc));
            if kind == BranchKind::Return {
                out.extend(&self.return_sites);
            }
        }
        out
    }

    fn jump_table(&mut self, branch_pc: u64) -> Option<lower::TableData> {
        self.shared.folds.get(&branch_pc).cloned()
    }

    fn is_cold(&self, pc: u64) -> bool {
        self.shared.guide.is_some_and(|g| g.count(pc) == 0)
    }
    /// Image code relies on the host MMU for loads; `vmrun` stops entering it once the
    /// guest installs a SIGSEGV handler (the JIT then translates with checked loads).
    fn host_calls(&self) -> bool {
        self.shared.host_calls
    }

    fn host_fault_loads(&self) -> bool {
        true
    }

    fn chain_slot(&mut self, target: u64) -> Option<u32> {
        self.shared
            .slots
            .binary_search(&target)
            .ok()
            .map(|i| i as u32)
    }
}

/// The message of a caught panic.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

fn compile_region(
    blocks: &[&Block],
    entries: &[u64],
    func_id: u32,
    shared: &Shared,
    isa: &dyn cranelift_codegen::isa::TargetIsa,
    fctx: &mut FunctionBuilderContext,
) -> Result<Compiled, String> {
    // Calls whose callee is in the region (inlined, or recursive) return inside it: a
    // guest return may go to any of their return sites (the switch compares the address,
    // so extra candidates are harmless). Other calls' return sites are not candidates (a
    // function does not return to its own calls: each would be a switch entry and an edge
    // of every return's flow), nor do other indirect branches get them.
    let return_sites = if shared.guide.is_some() {
        let inside: HashSet<u64> = blocks.iter().map(|b| b.pc).collect();
        blocks
            .iter()
            .filter(|b| {
                matches!(b.ops.last(), Some(Op::Jump { target, kind: BranchKind::Call })
                    if inside.contains(target))
            })
            .filter_map(|b| b.return_site())
            .collect()
    } else {
        Vec::new()
    };
    let mut env = AotEnv {
        shared,
        return_sites,
    };
    let func = lower::lower_region(
        Region {
            blocks,
            loops: true,
            entries,
        },
        &mut env,
        layout::lower_config(),
        isa,
        fctx,
        UserFuncName::user(0, func_id),
    );
    let mut ctx = cranelift_codegen::Context::for_function(func);
    ctx.compile(isa, &mut cranelift_control::ControlPlane::default())
        .map_err(|e| format!("{:?}", e.inner))?;
    let compiled = ctx
        .compiled_code()
        .ok_or_else(|| "no code produced".to_string())?;
    // Image code is position-independent: nothing may need linking.
    if let Some(r) = compiled.buffer.relocs().first() {
        return Err(format!(
            "code needs a relocation ({:?} at {:#x}): images cannot hold it",
            r.kind, r.offset
        ));
    }
    Ok(Compiled {
        code: compiled.code_buffer().to_vec(),
        align: compiled.buffer.alignment as u64,
    })
}

/// Jump-table targets by the address of their indirect branch.
fn jump_tables(disc: &Discovery) -> HashMap<u64, Vec<u64>> {
    disc.jump_tables
        .iter()
        .map(|t| (t.branch, t.targets.clone()))
        .collect()
}

/// The jump tables whose contents are fixed ([`super::discover::JumpTable::entries`]), by
/// the address of their indirect branch: their switches are folded (see [`lower`]), and the
/// tables are among the guest ranges of the regions that hold those branches.
fn fixed_tables(disc: &Discovery) -> HashMap<u64, lower::TableData> {
    disc.jump_tables
        .iter()
        .filter(|t| !t.entries.is_empty())
        .map(|t| {
            let data = lower::TableData {
                addr: t.table,
                size: t.size,
                entries: t.entries.clone(),
            };
            (t.branch, data)
        })
        .collect()
}

/// Region-internal successors of a block: direct jumps, conditional branches and the
/// targets of a recovered jump table (calls and system-call continuations enter other
/// regions).
pub(super) fn successors(b: &Block, tables: &HashMap<u64, Vec<u64>>) -> Vec<u64> {
    let mut out = b.direct_successors();
    if let Some(Op::JumpReg { .. }) = b.ops.last() {
        if let Some(t) = b.last_insn_pc().and_then(|pc| tables.get(&pc)) {
            out.extend(t);
        }
    }
    out
}

/// Splits the discovered blocks into regions, one per function where it can: returns block
/// indices per region, head first, regions in PC order. A region is entered at its head or
/// at one of its [`entries`] (return sites and system-call continuations).
pub fn partition(disc: &Discovery) -> Vec<Vec<usize>> {
    partition_with(disc, &HashSet::new())
}

/// Where execution continues after `b` when it ends in a system call or in a call that
/// may return: entered from outside (the dispatcher, the callee's return), not by a branch.
fn continuation(disc: &Discovery, b: &Block) -> Option<u64> {
    match b.ops.last() {
        Some(Op::Syscall { next }) => Some(*next),
        Some(Op::Jump { target, .. }) if disc.noreturn.binary_search(target).is_ok() => None,
        _ => b.return_site(),
    }
}

/// Every continuation ([`continuation`]) of the discovered blocks.
fn continuations(disc: &Discovery) -> HashSet<u64> {
    disc.blocks
        .iter()
        .filter_map(|b| continuation(disc, b))
        .collect()
}

/// The secondary entries of each region ([`Region::entries`]): every continuation
/// ([`continuation`]) that does not head a region is an entry of the first region (in
/// `regions` order: the hottest, with a profile) that contains it.
pub fn entries(disc: &Discovery, regions: &[Vec<usize>]) -> Vec<Vec<u64>> {
    let blocks = &disc.blocks;
    let external = continuations(disc);
    let mut taken: HashSet<u64> = regions.iter().map(|r| blocks[r[0]].pc).collect();
    regions
        .iter()
        .map(|r| {
            let mut out: Vec<u64> = r[1..]
                .iter()
                .map(|&i| blocks[i].pc)
                .filter(|pc| external.contains(pc) && taken.insert(*pc))
                .collect();
            out.sort_unstable();
            out
        })
        .collect()
}

/// Regions for a profile-guided translation: hot regions grown along hot paths
/// ([`pgo::grow`]); every address a grown region may exit to heads a region of its own
/// (re-partitioning until that holds), so no exit falls back to the JIT.
fn guided_regions(
    disc: &Discovery,
    guide: &Guide,
    tables: &HashMap<u64, Vec<u64>>,
) -> Vec<Vec<usize>> {
    let known: HashSet<u64> = disc.blocks.iter().map(|b| b.pc).collect();
    // Continuations are secondary entries of whichever region holds them ([`entries`]).
    let external = continuations(disc);
    let mut extra = HashSet::new();
    let mut round = 0;
    loop {
        let base = partition_with(disc, &extra);
        let heads: HashSet<u64> = base.iter().map(|r| disc.blocks[r[0]].pc).collect();
        let grown = pgo::grow(disc, base, guide, tables);
        let missing: Vec<u64> = grown
            .iter()
            .flat_map(|r| {
                let blocks: Vec<&Block> = r.iter().map(|&i| &disc.blocks[i]).collect();
                let inside: HashSet<u64> = blocks.iter().map(|b| b.pc).collect();
                // Jump-table targets the region left out leave through the indirect table.
                let left_out = blocks
                    .iter()
                    .filter_map(|b| b.last_insn_pc().and_then(|pc| tables.get(&pc)))
                    .flatten()
                    .filter(|t| !inside.contains(t))
                    .copied()
                    .collect::<Vec<u64>>();
                crate::ir::exit_targets(&blocks).into_iter().chain(left_out)
            })
            .filter(|t| {
                known.contains(t)
                    && !heads.contains(t)
                    && !extra.contains(t)
                    && !external.contains(t)
            })
            .collect();
        log::debug!(
            "guided partition round {round}: {} exits without a region",
            missing.len()
        );
        if missing.is_empty() || round == 8 {
            return grown;
        }
        extra.extend(missing);
        round += 1;
    }
}

/// [`partition`] with `extra` addresses heading regions too.
fn partition_with(disc: &Discovery, extra: &HashSet<u64>) -> Vec<Vec<usize>> {
    let blocks = &disc.blocks;
    let n = blocks.len();
    let index: HashMap<u64, usize> = blocks.iter().enumerate().map(|(i, b)| (b.pc, i)).collect();
    let tables = jump_tables(disc);
    // Jump-table targets are reached from their switch inside the region, unless they are
    // function entries too.
    let table_only: std::collections::HashSet<u64> = disc
        .jump_tables
        .iter()
        .flat_map(|t| t.targets.iter().copied())
        .filter(|t| disc.functions.binary_search(t).is_err())
        .collect();
    // Continuations (return sites, system-call continuations) are entries too, but they
    // belong to the region of the code before them (one function, one translation): the
    // region's secondary entries ([`entries`]). Unless two heads reach them.
    let continuations = continuations(disc);
    let mut head = vec![false; n];
    for pc in &disc.entries {
        if let Some(&i) = index.get(pc) {
            let function = disc.functions.binary_search(pc).is_ok();
            head[i] = !table_only.contains(pc) && (function || !continuations.contains(pc));
        }
    }
    for pc in extra {
        if let Some(&i) = index.get(pc) {
            head[i] = true;
        }
    }
    const FREE: usize = usize::MAX;
    loop {
        let mut owner = vec![FREE; n];
        let mut changed = false;
        for h in 0..n {
            if !head[h] {
                continue;
            }
            owner[h] = h;
            let mut size = 1;
            let mut stack = vec![h];
            while let Some(b) = stack.pop() {
                let next = continuation(disc, &blocks[b]);
                for t in successors(&blocks[b], &tables).into_iter().chain(next) {
                    let Some(&ti) = index.get(&t) else { continue };
                    if head[ti] || owner[ti] == h {
                        continue;
                    }
                    if owner[ti] != FREE || size >= MAX_REGION_BLOCKS {
                        // Reached from a second head, or the region is full: a head itself.
                        log::trace!(
                            "partition: {:#x} becomes a head (from {:#x}, owner {:#x})",
                            blocks[ti].pc,
                            blocks[h].pc,
                            blocks.get(owner[ti]).map_or(0, |b| b.pc)
                        );
                        head[ti] = true;
                        changed = true;
                        continue;
                    }
                    owner[ti] = h;
                    size += 1;
                    stack.push(ti);
                }
            }
        }
        for i in 0..n {
            if owner[i] == FREE && !head[i] {
                head[i] = true;
                changed = true;
            }
        }
        if !changed {
            // Collect members in a deterministic order: head, then by PC.
            let mut regions: Vec<Vec<usize>> = Vec::new();
            let mut slot_of = vec![FREE; n];
            for h in (0..n).filter(|&h| head[h]) {
                slot_of[h] = regions.len();
                regions.push(vec![h]);
            }
            for i in 0..n {
                if !head[i] {
                    regions[slot_of[owner[i]]].push(i);
                }
            }
            return regions;
        }
    }
}
