//! The frontend implements every must-have opcode (ARMv8.0 integer, LSE, scalar FP and the
//! Advanced SIMD instructions gcc emits); see `vmc_compiler::a64::coverage::MUST_HAVE`.
//! The full table: `cargo run -p vmc-compiler --bin a64-coverage`.

use vmc_compiler::a64::coverage::{coverage, missing_must_haves, totals, MUST_HAVE};

#[test]
fn must_have_opcodes_are_implemented() {
    let buckets = coverage(1_000_000, 0xC0FFEE);
    let (seen, implemented, partial, missing) = totals(&buckets);
    eprintln!("coverage: {seen} opcodes seen, {implemented} implemented, {partial} partial, {missing} missing");
    let absent = missing_must_haves(&buckets);
    for name in &absent {
        let b = buckets.iter().find(|b| b.name == *name);
        match b {
            Some(b) => eprintln!(
                "  {name}: {} ({} samples, {} accepted, e.g. {:08x} {})",
                b.status().name(),
                b.samples,
                b.accepted,
                b.example,
                vmc_compiler::a64::disasm(b.example, 0)
            ),
            None => eprintln!("  {name}: never sampled (add a word to coverage::TARGETED)"),
        }
    }
    assert!(
        absent.is_empty(),
        "{} of {} must-have opcodes are not implemented: {absent:?}",
        absent.len(),
        MUST_HAVE.len()
    );
}
