//! The `insn` target: random A64 programs (the generators of the runtime's JIT differential
//! test, `runtime/tests/common/gen.rs`, included here so both test the same programs), with
//! one word in four programs replaced by a random 32-bit word (undefined encodings must give
//! SIGILL everywhere), run by the interpreter and every JIT tier in-process; the final
//! register, flag and memory states must be identical.

use std::fmt::Write as _;

use super::{Fuzzer, Outcome, Rng};

/// The runtime tests' shared helpers and generators (one source of truth).
#[allow(clippy::all, missing_docs, unused_imports)]
#[path = "../../../runtime/tests/common/mod.rs"]
pub mod rt;

use rt::gen::{
    differing, gen_program, gen_state, host_fault_agrees, image, initial_state, listing, precise,
    side_by_side, Program, DATA, DATA_LEN,
};
use vmc_compiler::CpuState;

/// Dispatches the interpreter may use (as in the JIT differential test).
const INTERP_BUDGET: u64 = 100_000;

/// The random-program fuzzer (stateless).
pub struct InsnFuzzer;

impl InsnFuzzer {
    /// The fuzzer.
    pub fn new() -> InsnFuzzer {
        InsnFuzzer
    }
}

impl Default for InsnFuzzer {
    fn default() -> Self {
        InsnFuzzer::new()
    }
}

/// Case `r`'s program, initial state and data.
fn generate(r: &mut Rng) -> (Program, CpuState, Vec<u8>) {
    let mut g = rt::Rng::new(r.next());
    let mut p = gen_program(&mut g);
    if r.one_in(4) {
        let free: Vec<usize> = (0..p.words.len()).filter(|&i| !p.keep[i]).collect();
        if !free.is_empty() {
            let i = free[r.below(free.len() as u64) as usize];
            p.words[i] = r.next() as u32;
        }
    }
    let (st, data) = gen_state(&mut g);
    (p, st, data)
}

/// A small generated static ELF (a random program and data), for other targets' seeds.
pub fn sample_elf(k: u64) -> Vec<u8> {
    let mut g = rt::Rng::new(0x5eed ^ k);
    let p = gen_program(&mut g);
    let (_, data) = gen_state(&mut g);
    image(&p, &data)
}

fn run(p: &Program, st: &CpuState, data: &[u8], tier: &rt::TierRun) -> rt::Final {
    let budget = if tier.name == "interp" {
        INTERP_BUDGET
    } else {
        2 * INTERP_BUDGET
    };
    rt::run_image_bounded(&image(p, data), st, tier.cfg, DATA, DATA_LEN, Some(budget))
}

impl Fuzzer for InsnFuzzer {
    fn input(&self, r: &mut Rng, _case: u64) -> Vec<u8> {
        // Generated from a copy: `run` regenerates the same case from the same generator.
        let (p, _, data) = generate(&mut r.clone());
        image(&p, &data)
    }

    fn run(&self, _input: &[u8], r: &mut Rng, _case: u64) -> Outcome {
        let (p, st, data) = generate(r);
        let reference = run(&p, &st, &data, &rt::interp_tier());
        if rt::is_budget_exhausted(&reference.term) {
            return Outcome::Ran;
        }
        for tier in rt::jit_tiers() {
            let mut tier = tier;
            let mut got = run(&p, &st, &data, &tier);
            if got != reference && host_fault_agrees(&reference, &got) {
                tier = precise(tier);
                got = run(&p, &st, &data, &tier);
            }
            if got == reference {
                continue;
            }
            let mut text = format!(
                "tier {} differs from the interpreter in {}\n",
                tier.name,
                differing(&reference, &got).join(", ")
            );
            let _ = writeln!(text, "  program:\n{}", listing(&p, None));
            let _ = writeln!(text, "  initial state:\n{}", initial_state(&st));
            let _ = writeln!(
                text,
                "  final states (`*` marks differences):\n{}",
                side_by_side(&reference, &got, &data, tier.name)
            );
            return Outcome::Mismatch(text);
        }
        Outcome::Ran
    }
}
