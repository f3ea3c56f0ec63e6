//! The guest-memory interface the interpreter and helpers use, and the faults it reports.

/// Why a guest access or instruction could not complete; each becomes a guest signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    /// Access to an unmapped or protected guest address (SIGSEGV).
    #[error("segmentation fault at guest address {addr:#x} ({})", if *.write { "write" } else { "read" })]
    Segv {
        /// The faulting guest address.
        addr: u64,
        /// Whether the access was a write.
        write: bool,
    },
    /// Misaligned atomic or exclusive access (SIGBUS).
    #[error("bus error: misaligned atomic access at {addr:#x}")]
    Bus {
        /// The misaligned guest address.
        addr: u64,
    },
    /// Access to a page of a file mapping that lies wholly beyond the end of its file
    /// (SIGBUS with BUS_ADRERR, as Linux raises it).
    #[error("bus error: access to {addr:#x}, beyond the end of the mapped file")]
    Unbacked {
        /// The faulting guest address.
        addr: u64,
    },
    /// Unallocated or unimplemented encoding (SIGILL).
    #[error("illegal instruction {insn:#010x}")]
    Undefined {
        /// The instruction word.
        insn: u32,
    },
}

/// Guest memory as seen by the interpreter and the instruction helpers.
///
/// Every access is checked against the guest's own mappings, so a guest pointer can never
/// reach host memory outside the guest sandbox.
pub trait Memory {
    /// Reads `size` (1, 2, 4 or 8) bytes, little-endian, zero-extended.
    fn read(&mut self, addr: u64, size: u8) -> Result<u64, Fault>;
    /// Writes the low `size` (1, 2, 4 or 8) bytes of `val`, little-endian.
    fn write(&mut self, addr: u64, size: u8, val: u64) -> Result<(), Fault>;
    /// Reads `buf.len()` bytes.
    fn read_bytes(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), Fault>;
    /// Writes `buf`.
    fn write_bytes(&mut self, addr: u64, buf: &[u8]) -> Result<(), Fault>;

    /// Reads a 16-byte value.
    fn read_u128(&mut self, addr: u64) -> Result<u128, Fault> {
        let mut b = [0u8; 16];
        self.read_bytes(addr, &mut b)?;
        Ok(u128::from_le_bytes(b))
    }
    /// Writes a 16-byte value.
    fn write_u128(&mut self, addr: u64, val: u128) -> Result<(), Fault> {
        self.write_bytes(addr, &val.to_le_bytes())
    }
}

/// A flat little test memory: `size` bytes mapped at `base`, everything else faults.
#[derive(Debug, Clone)]
pub struct FlatMemory {
    /// Guest address of the first byte.
    pub base: u64,
    /// The bytes.
    pub bytes: Vec<u8>,
}

impl FlatMemory {
    /// `size` zero bytes mapped at `base`.
    pub fn new(base: u64, size: usize) -> Self {
        FlatMemory {
            base,
            bytes: vec![0; size],
        }
    }

    fn range(&self, addr: u64, len: usize, write: bool) -> Result<std::ops::Range<usize>, Fault> {
        let off = addr.wrapping_sub(self.base);
        let end = off.checked_add(len as u64);
        match end {
            Some(end) if addr >= self.base && end <= self.bytes.len() as u64 => {
                Ok(off as usize..end as usize)
            }
            _ => Err(Fault::Segv { addr, write }),
        }
    }
}

impl Memory for FlatMemory {
    fn read(&mut self, addr: u64, size: u8) -> Result<u64, Fault> {
        let r = self.range(addr, size as usize, false)?;
        let mut b = [0u8; 8];
        b[..size as usize].copy_from_slice(&self.bytes[r]);
        Ok(u64::from_le_bytes(b))
    }
    fn write(&mut self, addr: u64, size: u8, val: u64) -> Result<(), Fault> {
        let r = self.range(addr, size as usize, true)?;
        self.bytes[r].copy_from_slice(&val.to_le_bytes()[..size as usize]);
        Ok(())
    }
    fn read_bytes(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), Fault> {
        let r = self.range(addr, buf.len(), false)?;
        buf.copy_from_slice(&self.bytes[r]);
        Ok(())
    }
    fn write_bytes(&mut self, addr: u64, buf: &[u8]) -> Result<(), Fault> {
        let r = self.range(addr, buf.len(), true)?;
        self.bytes[r].copy_from_slice(buf);
        Ok(())
    }
}
