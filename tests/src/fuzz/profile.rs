//! The `profile` target: profiles (one recorded from a run of the demo, one built from its
//! discovered blocks with random counts, one with extreme values) are encoded, mutated and
//! mostly resealed (correct SHA-256 trailer), then decoded; a profile that decodes must
//! round-trip, and goes through everything `vmc profile merge|show` and `vmc translate
//! --profile` do with it: merge, summary, instruction counts, the PGO guide and region
//! growth; one case in [`TRANSLATE_EVERY`] translates the demo with it (Cranelift).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use vmc_compiler::aot::discover::{discover, Discovery};
use vmc_compiler::aot::pgo::{grow, Guide};
use vmc_compiler::aot::translate::{partition, translate, Options};
use vmc_profiles::{sha256, BlockCount, BlockKey, IndirectSite, Profile, SiteKind};
use vmc_runtime::profile::Recorder;
use vmc_runtime::{ExecOptions, Process, ProcessConfig, Timing};

use super::{mutate, Fuzzer, Outcome, Rng, DEMO_ELF};

/// One case in this many also runs a full (Cranelift) translation guided by the profile.
pub const TRANSLATE_EVERY: u64 = 500;

/// Seed profiles and the demo's discovery.
pub struct ProfileFuzzer {
    seeds: Vec<Vec<u8>>,
    disc: Discovery,
    regions: Vec<Vec<usize>>,
}

/// A profile recorded from a run of the demo under the instrumented JIT.
fn recorded() -> Result<Profile, String> {
    let path = std::env::temp_dir().join(format!("vmfuzz-{}.prof", std::process::id()));
    let rec = Arc::new(Recorder::new(&path, DEMO_ELF, "demo"));
    let mut p = Process::spawn_image(
        DEMO_ELF,
        Path::new("demo"),
        &[],
        &[],
        &ProcessConfig::default(),
    )
    .map_err(|e| format!("demo: {e}"))?;
    let opts = ExecOptions {
        tiers: super::elf::tier(vmc_runtime::tiers::TierMode::Auto, false),
        max_dispatches: Some(1_000_000),
        profile: Some(rec.clone()),
        ..ExecOptions::default()
    };
    // The demo prints: not on our stdout.
    // SAFETY: duplicates and restores this process's own stdout around the run.
    let saved = unsafe {
        let saved = libc::dup(1);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY);
        if null >= 0 {
            libc::dup2(null, 1);
            libc::close(null);
        }
        saved
    };
    let _ = p.run(&opts, &mut Timing::default());
    if saved >= 0 {
        // SAFETY: puts back the stdout saved above.
        unsafe {
            libc::dup2(saved, 1);
            libc::close(saved);
        }
    }
    Ok(rec.profile())
}

/// A profile of the demo's discovered blocks with random counts, edges and sites.
fn synthetic(disc: &Discovery, r: &mut Rng) -> Profile {
    let mut p = Profile::new(sha256(DEMO_ELF), "demo");
    for b in &disc.blocks {
        let count = r.pick(&[0, 1, 63, 64, 65, 1000, 1 << 20, u64::MAX]);
        p.blocks.insert(
            BlockKey {
                pc: b.pc,
                insns: b.guest_insns,
            },
            BlockCount {
                count,
                taken: count / 2,
            },
        );
        if let Some(n) = disc.blocks.get(r.below(disc.blocks.len() as u64) as usize) {
            p.edges.insert((b.pc, n.pc), r.below(100_000));
        }
        if r.one_in(4) {
            let targets: BTreeMap<u64, u64> = (0..r.below(12))
                .map(|_| {
                    let t = disc.blocks[r.below(disc.blocks.len() as u64) as usize].pc;
                    (t, r.pick(&[1, 64, 5000, u64::MAX]))
                })
                .collect();
            let kind = r.pick(&[SiteKind::Call, SiteKind::Jump, SiteKind::Return]);
            p.indirect.insert(
                b.last_insn_pc().unwrap_or(b.pc),
                IndirectSite { kind, targets },
            );
        }
        if r.one_in(8) {
            p.entries.insert(b.pc + 4 * r.below(3));
            p.calls.insert(b.pc, r.below(1000));
        }
    }
    p.entries.extend([0, u64::MAX, 3]);
    p
}

impl ProfileFuzzer {
    /// Records and builds the seed profiles.
    pub fn new() -> Result<ProfileFuzzer, String> {
        let disc = discover(DEMO_ELF).map_err(|e| format!("demo: {e}"))?;
        let mut r = Rng::new(7);
        let mut seeds = vec![recorded()?.encode(), synthetic(&disc, &mut r).encode()];
        let mut odd = Profile::new([0xff; 32], "été");
        odd.runs = u64::MAX;
        odd.blocks.insert(
            BlockKey {
                pc: u64::MAX - 3,
                insns: u32::MAX,
            },
            BlockCount {
                count: u64::MAX,
                taken: u64::MAX,
            },
        );
        odd.edges.insert((u64::MAX, 0), u64::MAX);
        seeds.push(odd.encode());
        let regions = partition(&disc);
        Ok(ProfileFuzzer {
            seeds,
            disc,
            regions,
        })
    }
}

impl Fuzzer for ProfileFuzzer {
    fn input(&self, r: &mut Rng, _case: u64) -> Vec<u8> {
        let seed = &self.seeds[r.below(self.seeds.len() as u64) as usize];
        let body = seed.len().saturating_sub(32);
        let mut data = seed[..body].to_vec();
        for _ in 0..1 + r.below(4) {
            // Mostly the header and the first entries, where sizes and counts are.
            let hi = if r.coin() { 256 } else { usize::MAX };
            mutate::bytes(r, &mut data, 0, hi);
        }
        if !r.one_in(8) {
            let d = sha256(&data);
            data.extend_from_slice(&d);
        }
        data
    }

    fn run(&self, input: &[u8], r: &mut Rng, case: u64) -> Outcome {
        let Ok(p) = Profile::decode(input) else {
            return Outcome::Refused;
        };
        match Profile::decode(&p.encode()) {
            Ok(q) if q == p => {}
            other => {
                return Outcome::Mismatch(format!(
                    "a decoded profile does not round-trip through encode/decode: {:?}",
                    other.map(|_| "decodes to a different profile")
                ))
            }
        }
        // merge (`vmc profile merge`): with itself and with a seed of the same guest.
        let mut m = p.clone();
        let _ = m.merge(&p);
        for s in &self.seeds {
            if let Ok(mut s) = Profile::decode(s) {
                let _ = s.merge(&p);
            }
        }
        // show (`vmc profile show`).
        let _ = m.summary(r.below(30) as usize).to_string();
        let counts = p.insn_counts();
        let _ = (counts.executed_insns(), counts.dynamic_insns());
        for b in p.blocks.keys().take(64) {
            let _ = counts.count(b.pc.wrapping_add(4 * r.below(4)));
        }
        // The PGO guide and region growth over the demo's blocks.
        let guide = Guide::new(&p);
        let _ = guide.hints().entries.len();
        for site in p.indirect.keys().take(64) {
            let _ = guide.hot_targets(*site);
        }
        let _ = grow(&self.disc, self.regions.clone(), &guide, &HashMap::new());
        if case.is_multiple_of(TRANSLATE_EVERY) {
            let mut q = p.clone();
            q.guest_sha256 = sha256(DEMO_ELF);
            let opts = Options {
                jobs: 1,
                profile: Some(Arc::new(q)),
                ..Options::default()
            };
            let _ = translate(DEMO_ELF, "demo", &opts);
        }
        Outcome::Ran
    }
}
