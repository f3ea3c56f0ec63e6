//! Profile recording (`vmrun --profile-out`).
//!
//! Every block the dispatcher meets gets a pair of counters (times entered, times its
//! conditional branch was taken). Translated code increments them inline (the lowering asks
//! [`vmc_compiler::lower::Env::block_counter`] for their address); the interpreter's blocks
//! are counted by the dispatcher. Indirect branches report (site, target) through
//! [`crate::jit::slow::profile_indirect`], and every address the dispatcher enters is an
//! entry. At exit [`Recorder::profile`] turns this into a [`Profile`]: block counts, edges
//! (from the address of each block's last instruction), call counts, indirect-target
//! histograms and entries.
//!
//! Counter memory is allocated once and never moves, because translated code holds its
//! addresses. Only the process that created the recorder writes the file (a forked guest
//! child's counts are dropped), and a guest `execve` writes it before the emulator is
//! replaced.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use vmc_compiler::interp::Exit;
use vmc_compiler::ir::{Block, BranchKind, Op};
use vmc_profiles::{BlockKey, IndirectSite, Profile, ProfileError, SiteKind};

/// Blocks that can be counted (two `u64` each: 32 MiB of lazily allocated memory).
const MAX_BLOCKS: usize = 1 << 21;
/// Entries of the direct-mapped (site, target) cache in front of the histogram (a power of
/// two): a repeated indirect branch is counted without a lock or a hash map.
const SAMPLE_CACHE: usize = 1 << 14;

/// How a counted block ends, for edges and call counts.
#[derive(Clone, Copy, Debug)]
enum Term {
    /// Direct jump (including the fall-through of a block cut by the size limit).
    Jump(u64),
    /// Direct call.
    Call(u64),
    /// Conditional branch.
    Branch { taken: u64, fallthrough: u64 },
    /// System call, then this address.
    Syscall(u64),
    /// Indirect branch (its targets come from the histogram) or a trap.
    Other,
}

#[derive(Clone, Copy, Debug)]
struct Counted {
    key: BlockKey,
    /// Address of the last instruction (the branch).
    last: u64,
    term: Term,
}

#[derive(Default)]
struct Inner {
    index: HashMap<(u64, u32), usize>,
    blocks: Vec<Counted>,
    /// Counts evicted from the sample cache.
    indirect: HashMap<(u64, u64), u64>,
    kinds: HashMap<u64, SiteKind>,
    entries: HashSet<u64>,
    full: bool,
}

/// Records one guest program's execution profile.
pub struct Recorder {
    path: PathBuf,
    guest_sha256: [u8; 32],
    guest_name: String,
    pid: u32,
    counters: Box<[AtomicU64]>,
    /// [`SAMPLE_CACHE`] triples (site, target, count); count 0 marks an empty entry.
    samples: Box<[AtomicU64]>,
    inner: Mutex<Inner>,
}

/// `n` zeroed counters from zeroed (lazily faulted) memory.
fn zeroed_counters(n: usize) -> Box<[AtomicU64]> {
    let zeroed = vec![0u64; n].into_boxed_slice();
    // SAFETY: AtomicU64 has the same size, alignment and bit validity as u64, so a boxed
    // slice of one is a valid boxed slice of the other with the same allocation layout.
    unsafe { Box::from_raw(Box::into_raw(zeroed) as *mut [AtomicU64]) }
}

fn add_edge(p: &mut Profile, from: u64, to: u64, n: u64) {
    if n > 0 {
        *p.edges.entry((from, to)).or_default() += n;
    }
}

fn site_kind(kind: BranchKind) -> SiteKind {
    match kind {
        BranchKind::Jump => SiteKind::Jump,
        BranchKind::Call => SiteKind::Call,
        BranchKind::Return => SiteKind::Return,
    }
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("path", &self.path)
            .field("blocks", &self.blocks())
            .finish()
    }
}

impl Recorder {
    /// A recorder for the guest binary `guest` (named `name`), writing to `path`.
    pub fn new(path: &Path, guest: &[u8], name: &str) -> Recorder {
        Recorder {
            path: path.to_path_buf(),
            guest_sha256: vmc_profiles::sha256(guest),
            guest_name: name.to_string(),
            pid: std::process::id(),
            counters: zeroed_counters(2 * MAX_BLOCKS),
            samples: zeroed_counters(3 * SAMPLE_CACHE),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain counters behind: still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Index of the counter pair of `block`, registering it on first use.
    fn slot(&self, block: &Block) -> Option<usize> {
        let mut inner = self.lock();
        if let Some(&i) = inner.index.get(&(block.pc, block.guest_insns)) {
            return Some(i);
        }
        let i = inner.blocks.len();
        if i >= MAX_BLOCKS {
            if !inner.full {
                log::warn!("profile: more than {MAX_BLOCKS} blocks; later blocks are not counted");
                inner.full = true;
            }
            return None;
        }
        let term = match block.ops.last() {
            Some(Op::Jump {
                target,
                kind: BranchKind::Call,
            }) => Term::Call(*target),
            Some(Op::Jump { target, .. }) => Term::Jump(*target),
            Some(Op::Branch {
                taken, fallthrough, ..
            }) => Term::Branch {
                taken: *taken,
                fallthrough: *fallthrough,
            },
            Some(Op::Syscall { next }) => Term::Syscall(*next),
            _ => Term::Other,
        };
        inner.blocks.push(Counted {
            key: BlockKey {
                pc: block.pc,
                insns: block.guest_insns,
            },
            last: block.last_insn_pc().unwrap_or(block.pc),
            term,
        });
        inner.index.insert((block.pc, block.guest_insns), i);
        Some(i)
    }

    /// Host address of `block`'s counter pair, for translated code to increment.
    pub fn counter(&self, block: &Block) -> Option<u64> {
        self.slot(block)
            .map(|i| self.counters[2 * i].as_ptr() as u64)
    }

    /// Counts a block run by the interpreter, which left with `exit` and the PC at `next`.
    pub fn count_interp(&self, block: &Block, exit: &Exit, next: u64) {
        let Some(i) = self.slot(block) else { return };
        self.counters[2 * i].fetch_add(1, Ordering::Relaxed);
        if !matches!(exit, Exit::Continue(_)) {
            return;
        }
        match block.ops.last() {
            Some(Op::Branch { taken, .. }) if *taken == next => {
                self.counters[2 * i + 1].fetch_add(1, Ordering::Relaxed);
            }
            Some(Op::JumpReg { kind, .. }) => {
                let site = block.last_insn_pc().unwrap_or(block.pc);
                self.indirect(site, next, *kind);
            }
            _ => {}
        }
    }

    /// Records that the indirect branch at `site` went to `target`.
    pub fn indirect(&self, site: u64, target: u64, kind: BranchKind) {
        let h = (site ^ target.rotate_left(29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let i = 3 * (h >> (64 - SAMPLE_CACHE.trailing_zeros())) as usize;
        let e = &self.samples[i..i + 3];
        let n = e[2].load(Ordering::Relaxed);
        if n > 0 && e[0].load(Ordering::Relaxed) == site && e[1].load(Ordering::Relaxed) == target {
            // Recording threads may race here and lose a count, like the block counters.
            e[2].store(n + 1, Ordering::Relaxed);
            return;
        }
        let mut inner = self.lock();
        if n > 0 {
            let old = (e[0].load(Ordering::Relaxed), e[1].load(Ordering::Relaxed));
            *inner.indirect.entry(old).or_default() += n;
        }
        inner.kinds.entry(site).or_insert(site_kind(kind));
        e[0].store(site, Ordering::Relaxed);
        e[1].store(target, Ordering::Relaxed);
        e[2].store(1, Ordering::Relaxed);
    }

    /// Records that the dispatcher entered code at `pc`.
    pub fn entry(&self, pc: u64) {
        self.lock().entries.insert(pc);
    }

    /// Blocks being counted so far.
    pub fn blocks(&self) -> usize {
        self.lock().blocks.len()
    }

    /// The profile recorded so far.
    pub fn profile(&self) -> Profile {
        let inner = self.lock();
        let mut p = Profile::new(self.guest_sha256, &self.guest_name);
        for (i, b) in inner.blocks.iter().enumerate() {
            let count = self.counters[2 * i].load(Ordering::Relaxed);
            if count == 0 {
                continue;
            }
            // Taken can only exceed entries when a racing thread lost an increment.
            let taken = self.counters[2 * i + 1].load(Ordering::Relaxed).min(count);
            let c = p.blocks.entry(b.key).or_default();
            c.count += count;
            if let Term::Branch { .. } = b.term {
                c.taken += taken;
            }
            match b.term {
                Term::Jump(t) | Term::Syscall(t) => add_edge(&mut p, b.last, t, count),
                Term::Call(t) => {
                    add_edge(&mut p, b.last, t, count);
                    *p.calls.entry(t).or_default() += count;
                }
                Term::Branch {
                    taken: t,
                    fallthrough: f,
                } => {
                    add_edge(&mut p, b.last, t, taken);
                    add_edge(&mut p, b.last, f, count - taken);
                }
                Term::Other => {}
            }
        }
        let mut samples = inner.indirect.clone();
        for e in self.samples.chunks(3) {
            let n = e[2].load(Ordering::Relaxed);
            if n > 0 {
                let key = (e[0].load(Ordering::Relaxed), e[1].load(Ordering::Relaxed));
                *samples.entry(key).or_default() += n;
            }
        }
        for (&(site, target), &n) in &samples {
            let kind = inner.kinds.get(&site).copied().unwrap_or(SiteKind::Jump);
            add_edge(&mut p, site, target, n);
            if kind == SiteKind::Call {
                *p.calls.entry(target).or_default() += n;
            }
            p.indirect
                .entry(site)
                .or_insert_with(|| IndirectSite {
                    kind,
                    targets: Default::default(),
                })
                .targets
                .insert(target, n);
        }
        p.entries = inner.entries.iter().copied().collect();
        p
    }

    /// Writes the profile to its file, unless this is a forked child of the recording
    /// process (whose counts are dropped). Returns whether it wrote.
    pub fn write(&self) -> Result<bool, ProfileError> {
        if std::process::id() != self.pid {
            return Ok(false);
        }
        self.profile().write(&self.path)?;
        Ok(true)
    }

    /// The file the profile goes to.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
