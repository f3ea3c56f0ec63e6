//! The binary file format: varints, [`encode`] and [`decode`] (described in the crate docs).

use std::collections::{BTreeMap, BTreeSet};

use crate::{
    sha256, BlockCount, BlockKey, IndirectSite, Profile, ProfileError, SiteKind, FORMAT_VERSION,
    MAGIC,
};

/// Magic and version.
const HEADER_LEN: usize = 12;
/// The SHA-256 trailer.
const DIGEST_LEN: usize = 32;

/// Appends varints to a buffer.
struct Writer(Vec<u8>);

impl Writer {
    fn u64(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    /// `to - from` (mod 2^64), zigzag-encoded.
    fn delta(&mut self, from: u64, to: u64) {
        let d = to.wrapping_sub(from) as i64;
        self.u64(((d << 1) ^ (d >> 63)) as u64);
    }

    fn len(&mut self, n: usize) {
        self.u64(n as u64);
    }
}

pub(crate) fn encode(p: &Profile) -> Vec<u8> {
    let mut w = Writer(Vec::new());
    w.0.extend_from_slice(&MAGIC);
    w.0.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    w.0.extend_from_slice(&p.guest_sha256);
    w.len(p.guest_name.len());
    w.0.extend_from_slice(p.guest_name.as_bytes());
    w.u64(p.runs);

    w.len(p.blocks.len());
    let mut prev = 0;
    for (k, c) in &p.blocks {
        w.u64(k.pc - prev);
        prev = k.pc;
        w.u64(k.insns.into());
        w.u64(c.count);
        w.u64(c.taken);
    }

    w.len(p.edges.len());
    let mut prev = 0;
    for (&(from, to), &count) in &p.edges {
        w.u64(from - prev);
        prev = from;
        w.delta(from, to);
        w.u64(count);
    }

    w.len(p.indirect.len());
    let mut prev = 0;
    for (&pc, site) in &p.indirect {
        w.u64(pc - prev);
        prev = pc;
        w.0.push(match site.kind {
            SiteKind::Jump => 0,
            SiteKind::Call => 1,
            SiteKind::Return => 2,
        });
        w.len(site.targets.len());
        for (&target, &count) in &site.targets {
            w.delta(pc, target);
            w.u64(count);
        }
    }

    w.len(p.entries.len());
    let mut prev = 0;
    for &pc in &p.entries {
        w.u64(pc - prev);
        prev = pc;
    }

    w.len(p.calls.len());
    let mut prev = 0;
    for (&pc, &count) in &p.calls {
        w.u64(pc - prev);
        prev = pc;
        w.u64(count);
    }

    let digest = sha256(&w.0);
    w.0.extend_from_slice(&digest);
    w.0
}

fn corrupt(what: impl Into<String>) -> ProfileError {
    ProfileError::Corrupt(what.into())
}

/// Reads varints from the body, never past its end.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ProfileError> {
        if n > self.rest.len() {
            return Err(corrupt(format!("{what} runs past the end")));
        }
        let (bytes, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(bytes)
    }

    fn byte(&mut self, what: &str) -> Result<u8, ProfileError> {
        let (&b, rest) = self
            .rest
            .split_first()
            .ok_or_else(|| corrupt(format!("{what} runs past the end")))?;
        self.rest = rest;
        Ok(b)
    }

    fn u64(&mut self, what: &str) -> Result<u64, ProfileError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte(what)?;
            if shift == 63 && b > 1 {
                return Err(corrupt(format!("{what}: varint overflows 64 bits")));
            }
            if shift > 0 && b == 0 {
                return Err(corrupt(format!("{what}: overlong varint")));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(corrupt(format!("{what}: varint overflows 64 bits")))
    }

    fn u32(&mut self, what: &str) -> Result<u32, ProfileError> {
        u32::try_from(self.u64(what)?).map_err(|_| corrupt(format!("{what} exceeds 32 bits")))
    }

    /// The length of a list or string; each element takes at least one byte, so a length
    /// beyond the remaining bytes is refused at once.
    fn len(&mut self, what: &str) -> Result<usize, ProfileError> {
        let n = self.u64(what)?;
        match usize::try_from(n) {
            Ok(n) if n <= self.rest.len() => Ok(n),
            _ => Err(corrupt(format!("{what} {n} exceeds the file"))),
        }
    }

    /// `prev` plus an unsigned delta, refusing to wrap.
    fn after(&mut self, prev: u64, what: &str) -> Result<u64, ProfileError> {
        prev.checked_add(self.u64(what)?)
            .ok_or_else(|| corrupt(format!("{what} overflows 64 bits")))
    }

    /// `base` plus a zigzag-encoded delta (mod 2^64).
    fn relative(&mut self, base: u64, what: &str) -> Result<u64, ProfileError> {
        let z = self.u64(what)?;
        let d = ((z >> 1) as i64) ^ -((z & 1) as i64);
        Ok(base.wrapping_add(d as u64))
    }
}

/// Requires list keys to be strictly increasing.
fn in_order<K: Ord + Copy>(last: &mut Option<K>, key: K, what: &str) -> Result<(), ProfileError> {
    if last.is_some_and(|l| key <= l) {
        return Err(corrupt(format!("{what} out of order")));
    }
    *last = Some(key);
    Ok(())
}

pub(crate) fn decode(bytes: &[u8]) -> Result<Profile, ProfileError> {
    if bytes.len() < HEADER_LEN + DIGEST_LEN {
        return Err(ProfileError::Truncated);
    }
    // The length check above makes these splits safe.
    let (sealed, digest) = bytes.split_at(bytes.len() - DIGEST_LEN);
    let (header, body) = sealed.split_at(HEADER_LEN);
    let (magic, version) = header.split_at(MAGIC.len());
    if magic != MAGIC {
        return Err(ProfileError::NotAProfile);
    }
    let mut v = [0; 4];
    v.copy_from_slice(version);
    let found = u32::from_le_bytes(v);
    if found != FORMAT_VERSION {
        return Err(ProfileError::Version {
            found,
            expected: FORMAT_VERSION,
        });
    }
    if sha256(sealed) != digest {
        return Err(ProfileError::Checksum);
    }
    let mut r = Reader { rest: body };

    let mut guest_sha256 = [0; 32];
    guest_sha256.copy_from_slice(r.take(32, "guest hash")?);
    let n = r.len("name length")?;
    let guest_name = std::str::from_utf8(r.take(n, "name")?)
        .map_err(|_| corrupt("guest name is not UTF-8"))?
        .to_owned();
    let runs = r.u64("runs")?;

    let mut blocks = BTreeMap::new();
    let (mut last, mut prev) = (None, 0);
    for _ in 0..r.len("block count")? {
        let pc = r.after(prev, "block pc")?;
        prev = pc;
        let key = BlockKey {
            pc,
            insns: r.u32("block length")?,
        };
        in_order(&mut last, key, "blocks")?;
        let count = r.u64("block count")?;
        let taken = r.u64("block taken count")?;
        blocks.insert(key, BlockCount { count, taken });
    }

    let mut edges = BTreeMap::new();
    let (mut last, mut prev) = (None, 0);
    for _ in 0..r.len("edge count")? {
        let from = r.after(prev, "edge source")?;
        prev = from;
        let to = r.relative(from, "edge target")?;
        in_order(&mut last, (from, to), "edges")?;
        edges.insert((from, to), r.u64("edge count")?);
    }

    let mut indirect = BTreeMap::new();
    let (mut last, mut prev) = (None, 0);
    for _ in 0..r.len("indirect site count")? {
        let pc = r.after(prev, "indirect site")?;
        prev = pc;
        in_order(&mut last, pc, "indirect sites")?;
        let kind = match r.byte("site kind")? {
            0 => SiteKind::Jump,
            1 => SiteKind::Call,
            2 => SiteKind::Return,
            k => return Err(corrupt(format!("bad indirect site kind {k}"))),
        };
        let mut targets = BTreeMap::new();
        let mut last_target = None;
        for _ in 0..r.len("target count")? {
            let target = r.relative(pc, "indirect target")?;
            in_order(&mut last_target, target, "indirect targets")?;
            targets.insert(target, r.u64("target count")?);
        }
        indirect.insert(pc, IndirectSite { kind, targets });
    }

    let mut entries = BTreeSet::new();
    let (mut last, mut prev) = (None, 0);
    for _ in 0..r.len("entry count")? {
        let pc = r.after(prev, "entry")?;
        prev = pc;
        in_order(&mut last, pc, "entries")?;
        entries.insert(pc);
    }

    let mut calls = BTreeMap::new();
    let (mut last, mut prev) = (None, 0);
    for _ in 0..r.len("callee count")? {
        let pc = r.after(prev, "callee")?;
        prev = pc;
        in_order(&mut last, pc, "callees")?;
        calls.insert(pc, r.u64("call count")?);
    }

    if !r.rest.is_empty() {
        return Err(corrupt(format!("{} bytes after the end", r.rest.len())));
    }
    Ok(Profile {
        guest_sha256,
        guest_name,
        runs,
        blocks,
        edges,
        indirect,
        entries,
        calls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> Result<u64, ProfileError> {
        Reader { rest: bytes }.u64("x")
    }

    #[test]
    fn varints_round_trip() {
        for v in [0, 1, 127, 128, 300, 1 << 35, u64::MAX - 1, u64::MAX] {
            let mut w = Writer(Vec::new());
            w.u64(v);
            assert!(w.0.len() <= 10);
            let mut r = Reader { rest: &w.0 };
            assert_eq!(r.u64("x").unwrap(), v);
            assert!(r.rest.is_empty());
        }
    }

    #[test]
    fn zigzag_deltas_round_trip() {
        for (from, to) in [
            (0, 0),
            (0x1000, 0x0ff0),
            (5, u64::MAX),
            (u64::MAX, 0),
            (7, 1 << 63),
        ] {
            let mut w = Writer(Vec::new());
            w.delta(from, to);
            assert_eq!(Reader { rest: &w.0 }.relative(from, "x").unwrap(), to);
        }
        let mut w = Writer(Vec::new());
        w.delta(0x1000, 0x0ffc);
        assert_eq!(w.0, [7]); // -4 -> 7
    }

    #[test]
    fn bad_varints_are_refused() {
        assert!(read(&[]).is_err());
        assert!(read(&[0x80]).is_err());
        assert!(read(&[0x80, 0x00]).is_err()); // overlong zero
        assert!(read(&[0xff; 9].iter().copied().chain([0x02]).collect::<Vec<_>>()).is_err());
        assert!(read(&[0xff; 11]).is_err());
        assert_eq!(
            read(&[0xff; 9].iter().copied().chain([0x01]).collect::<Vec<_>>()).unwrap(),
            u64::MAX
        );
    }
}
