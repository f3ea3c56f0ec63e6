//! Reading the program file: large files are mapped rather than copied, so start-up does not
//! pay for reading megabytes it may never use. (An AOT image is then read whole into
//! private memory, see `vmc_runtime::aot::ImageMem`: its code must not come from a file
//! mapping, which can change under it.)

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::path::Path;

/// Files at least this large are mapped.
const MAP_MIN: u64 = 1 << 20;

/// A program file's bytes: mapped read-only and private, or read into memory.
pub enum Program {
    /// A private read-only mapping of the whole file.
    Mapped {
        ptr: *const u8,
        len: usize,
        file: File,
    },
    /// The file's contents, read.
    Read(Vec<u8>, File),
}

impl Program {
    /// Opens `path`: maps it when large enough, else reads it.
    pub fn open(path: &Path) -> io::Result<Program> {
        let f = File::open(path)?;
        // Kept open while the guest runs: out of the guest's descriptor space.
        let fd = vmc_runtime::syscalls::fds::hide_runtime_fd(f.into_raw_fd());
        // SAFETY: `fd` is the descriptor just moved out of `f`, owned by nobody else.
        let mut f = unsafe { File::from_raw_fd(fd) };
        let meta = f.metadata()?;
        let len = meta.len();
        if len >= MAP_MIN && meta.is_file() {
            let size = usize::try_from(len).map_err(io::Error::other)?;
            // SAFETY: a fresh read-only private mapping of an open regular file; checked
            // below and unmapped by Drop.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    size,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE,
                    f.as_raw_fd(),
                    0,
                )
            };
            if ptr != libc::MAP_FAILED {
                return Ok(Program::Mapped {
                    ptr: ptr as *const u8,
                    len: size,
                    file: f,
                });
            }
        }
        let mut data = Vec::new();
        f.read_to_end(&mut data)?;
        Ok(Program::Read(data, f))
    }

    /// The open file.
    pub fn file(&self) -> &File {
        match self {
            Program::Mapped { file, .. } | Program::Read(_, file) => file,
        }
    }
}

impl std::ops::Deref for Program {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            // SAFETY: the mapping is `len` readable bytes and lives as long as `self`.
            Program::Mapped { ptr, len, .. } => unsafe { std::slice::from_raw_parts(*ptr, *len) },
            Program::Read(v, _) => v,
        }
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        if let Program::Mapped { ptr, len, .. } = *self {
            // SAFETY: our own mapping, made by `open`; nothing borrows it any more.
            unsafe {
                libc::munmap(ptr as *mut libc::c_void, len);
            }
        }
    }
}
