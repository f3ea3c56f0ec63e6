//! The fuzzing harness (`vmfuzz`, [`vmc_tests::fuzz`]): a short campaign per target must find
//! no host panic, crash, hang or mismatch, and the harness must see a planted panic, crash
//! and hang (the hidden `self-test` target).
//!
//! `VMC_FUZZ_SCALE=N` multiplies the case counts (default 1: about two minutes in release).

use std::time::Duration;

use vmc_tests::fuzz::{campaign, Config, Counts, Target};
use vmc_tests::say;

fn run(target: Target, cases: u64, budget: Duration) -> Counts {
    let scale = std::env::var("VMC_FUZZ_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1u64);
    let cfg = Config {
        target,
        cases: cases * scale,
        first: 0,
        seed: 1,
        jobs: 2,
        out: vmc_tests::workspace_root().join("target/vmfuzz-test"),
        budget,
        progress: false,
        input: None,
    };
    let c = campaign(&cfg).unwrap_or_else(|e| panic!("{}: {e}", target.name()));
    say!(
        "{}",
        vmc_tests::fuzz::table(std::slice::from_ref(&c)).trim_end()
    );
    c
}

fn assert_clean(c: &Counts) {
    assert!(
        !c.failed(),
        "{}: {} panics, {} crashes, {} hangs, {} mismatches; reproducers:\n{}",
        c.target,
        c.panics,
        c.crashes,
        c.hangs,
        c.mismatches,
        c.reproducers.join("\n")
    );
    assert_eq!(c.cases, c.refused + c.ran + c.guest_loops);
}

#[test]
fn harness_detects_planted_panic_crash_and_hang() {
    let c = run(Target::SelfTest, 8, Duration::from_secs(1));
    assert_eq!(
        (c.cases, c.ran, c.panics, c.crashes, c.hangs),
        (8, 2, 2, 2, 2),
        "{c:?}"
    );
    assert_eq!(c.reproducers.len(), 6);
    for r in &c.reproducers {
        let txt = std::path::Path::new(r).with_extension("txt");
        let t = std::fs::read_to_string(&txt).unwrap();
        assert!(t.contains("--target self-test --seed 1 --case"), "{t}");
    }
}

#[test]
fn elf_inputs_never_hurt_the_host() {
    assert_clean(&run(Target::Elf, 800, Duration::from_secs(5)));
}

#[test]
fn image_inputs_never_hurt_the_host() {
    assert_clean(&run(Target::Image, 3000, Duration::from_secs(10)));
}

#[test]
fn profile_inputs_never_hurt_the_host() {
    assert_clean(&run(Target::Profile, 5000, Duration::from_secs(10)));
}

#[test]
fn random_instructions_agree_across_tiers() {
    assert_clean(&run(Target::Insn, 400, Duration::from_secs(30)));
}
