//! The helper registry (`a64::helpers`) that AOT images resolve helper names through: names
//! are unique, and every helper the frontend emits is registered.

use std::collections::HashSet;

use vmc_compiler::a64;
use vmc_compiler::ir::Op;

#[test]
fn helper_names_are_unique() {
    let mut seen = HashSet::new();
    for h in a64::helpers() {
        assert!(
            seen.insert(h.name),
            "helper name {} registered twice",
            h.name
        );
        assert!(std::ptr::eq(a64::helper_by_name(h.name).unwrap(), h));
    }
    assert!(seen.len() >= 30, "only {} helpers registered", seen.len());
}

#[test]
fn every_emitted_helper_is_registered() {
    // A fixed xorshift stream of instruction words: every helper call the frontend emits
    // for them must be found in the registry, by identity.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut used = HashSet::new();
    for _ in 0..400_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let word = x as u32;
        let block = a64::translate_block_limit(&mut |_| Some(word), 0x1000, 1);
        for op in &block.ops {
            if let Op::Call { helper, .. } = op {
                let found = a64::helpers().any(|h| std::ptr::eq(h, *helper));
                assert!(
                    found,
                    "helper {} (from {word:08x}) is not registered",
                    helper.name
                );
                used.insert(helper.name);
            }
        }
    }
    // The random words reach most helper classes (a sanity check of the test itself).
    assert!(used.len() >= 20, "random words reached only {used:?}");
}
