//! The `elf` target: mutated static AArch64 executables, loaded by
//! [`vmc_runtime::Process::spawn_image`] and, when they load, run with a dispatch budget in
//! one of the tiers (chosen per case).

use std::path::Path;

use vmc_runtime::tiers::{TierConfig, TierMode};
use vmc_runtime::{ExecOptions, Process, ProcessConfig, Timing};

use super::{mutate, Fuzzer, Outcome, Rng};

/// Tiers a case may run in: (mode, dispatch budget, weight). JIT tiers compile every block
/// they reach, so they get smaller budgets (the point is reaching the translators with
/// strange code, not running glibc's start-up to the end every time).
const TIERS: &[(TierMode, u64, u64)] = &[
    (TierMode::Interp, 5000, 5),
    (TierMode::Baseline, 300, 2),
    (TierMode::Opt, 150, 2),
    (TierMode::Auto, 3000, 1),
];

/// The seeds: real guests and small generated programs.
pub struct ElfFuzzer {
    seeds: Vec<(String, Vec<u8>)>,
}

impl ElfFuzzer {
    /// Reads the seed corpus (the demo is always there).
    pub fn new() -> Result<ElfFuzzer, String> {
        let mut seeds = vec![("demo.elf".to_string(), super::DEMO_ELF.to_vec())];
        for name in ["exit_code-O2", "segv-O2", "sig_regs-O2"] {
            if let Some(b) = super::guest(name) {
                seeds.push((name.into(), b));
            }
        }
        // Small generated programs: cheap to load, so most cases reach the loader's corners.
        for k in 0..4 {
            seeds.push((format!("generated-{k}"), super::insn::sample_elf(k)));
        }
        Ok(ElfFuzzer { seeds })
    }
}

/// A tier configuration for case runs: small code cache, thresholds low enough that the
/// JIT tiers start quickly.
pub fn tier(mode: TierMode, precise: bool) -> TierConfig {
    TierConfig {
        mode,
        baseline_threshold: 2,
        opt_threshold: 8,
        code_cache_size: 4 << 20,
        precise_faults: precise,
        ..TierConfig::default()
    }
}

/// Picks a tier by weight.
pub fn pick_tier(r: &mut Rng) -> (TierMode, u64) {
    let total: u64 = TIERS.iter().map(|t| t.2).sum();
    let mut k = r.below(total);
    for &(m, b, w) in TIERS {
        if k < w {
            return (m, b);
        }
        k -= w;
    }
    (TierMode::Interp, 5000)
}

/// Loads `elf` and, when it loads, runs it bounded; `aot` is an image's code (translated
/// with `return_prediction` or not: the JIT must make calls the same way).
pub fn run_guest(
    elf: &[u8],
    r: &mut Rng,
    aot: Option<std::sync::Arc<vmc_runtime::aot::AotCode>>,
    return_prediction: bool,
) -> Outcome {
    let (mode, budget) = pick_tier(r);
    let precise = r.one_in(4);
    let args: Vec<Vec<u8>> = (0..r.below(3))
        .map(|i| format!("arg{i}").into_bytes())
        .collect();
    let mut p = match Process::spawn_image(
        elf,
        Path::new("/fuzz/guest"),
        &args,
        &[b"PATH=/bin".to_vec()],
        &ProcessConfig::default(),
    ) {
        Ok(p) => p,
        Err(_) => return Outcome::Refused,
    };
    let opts = ExecOptions {
        tiers: TierConfig {
            return_prediction,
            ..tier(mode, precise)
        },
        max_dispatches: Some(budget),
        aot,
        ..ExecOptions::default()
    };
    let _ = p.run(&opts, &mut Timing::default());
    Outcome::Ran
}

impl Fuzzer for ElfFuzzer {
    fn input(&self, r: &mut Rng, _case: u64) -> Vec<u8> {
        let (_, seed) = &self.seeds[r.below(self.seeds.len() as u64) as usize];
        let mut data = seed.clone();
        for _ in 0..1 + r.below(3) {
            if r.below(5) < 4 {
                mutate::elf(r, &mut data);
            } else {
                mutate::bytes(r, &mut data, 0, usize::MAX);
            }
        }
        data
    }

    fn run(&self, input: &[u8], r: &mut Rng, _case: u64) -> Outcome {
        run_guest(input, r, None, false)
    }
}
