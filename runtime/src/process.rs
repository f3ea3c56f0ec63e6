//! A guest process: CPU state, memory, program break, file-system view and counters.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use vmc_compiler::lower::{Frame, JitContext};
use vmc_compiler::CpuState;

use crate::loader::{self, LoadError, LoadedImage};
use crate::memory::{GuestMemory, GUEST_SPACE};

/// Guest addresses above this are left for the stack; mmap allocates downward from here.
pub const MMAP_TOP: u64 = loader::STACK_TOP - loader::STACK_SIZE - (1 << 30);
/// Largest program break (brk) extension we allow.
pub const BRK_LIMIT: u64 = 16 << 30;

/// Options that shape how a guest is started.
#[derive(Debug, Clone, Default)]
pub struct ProcessConfig {
    /// Sysroot prefix for absolute guest paths (`-L`, like qemu-user).
    pub sysroot: Option<PathBuf>,
    /// argv[0] override (defaults to the program path as given).
    pub argv0: Option<Vec<u8>>,
}

/// Counters kept by the runtime.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Counters {
    /// Blocks translated to IR.
    pub blocks_translated: u64,
    /// Guest instructions translated to IR.
    pub insns_translated: u64,
    /// Blocks executed.
    pub blocks_executed: u64,
    /// Guest instructions executed (counted per block, approximate on early exits).
    pub insns_executed: u64,
    /// System calls performed.
    pub syscalls: u64,
    /// Translations discarded because their guest code changed or was unmapped.
    pub invalidations: u64,
    /// Code cache and JIT statistics.
    pub jit: crate::tiers::CacheStats,
}

/// The guest registers in a heap [`Frame`] beside the JIT context, at the fixed distance
/// translated code relies on (it reaches both through one pinned register). Derefs to the
/// [`CpuState`].
#[derive(Debug, Default)]
pub struct CpuFrame(Box<Frame>);

impl CpuFrame {
    /// A frame holding `cpu` and an empty context.
    pub fn new(cpu: CpuState) -> CpuFrame {
        CpuFrame(Box::new(Frame {
            cpu,
            ctx: JitContext::default(),
            escape: Default::default(),
        }))
    }

    /// The JIT context.
    pub fn ctx(&self) -> &JitContext {
        &self.0.ctx
    }

    /// The JIT context, to fill before entering translated code.
    pub fn ctx_mut(&mut self) -> &mut JitContext {
        &mut self.0.ctx
    }

    /// The host-fault escape hatch (see [`crate::jit::fault`]).
    pub fn escape(&self) -> &vmc_compiler::lower::Escape {
        &self.0.escape
    }

    /// The host-fault escape hatch, to set before entering translated code.
    pub fn escape_mut(&mut self) -> &mut vmc_compiler::lower::Escape {
        &mut self.0.escape
    }

    /// The frame's address: what translated code receives.
    pub fn frame_ptr(&mut self) -> *mut Frame {
        &mut *self.0
    }
}

impl std::ops::Deref for CpuFrame {
    type Target = CpuState;
    fn deref(&self) -> &CpuState {
        &self.0.cpu
    }
}

impl std::ops::DerefMut for CpuFrame {
    fn deref_mut(&mut self) -> &mut CpuState {
        &mut self.0.cpu
    }
}

/// One emulated Linux process.
pub struct Process {
    /// Registers (with the JIT context translated code finds beside them).
    pub cpu: CpuFrame,
    /// Address space.
    pub mem: GuestMemory,
    /// Start of the heap (initial program break).
    pub brk_start: u64,
    /// Current program break.
    pub brk: u64,
    /// Host path of the executable (for /proc/self/exe).
    pub exe: PathBuf,
    /// Sysroot prefix for absolute guest paths.
    pub sysroot: Option<PathBuf>,
    /// Signal dispositions per signal number: the arm64 `struct sigaction` words
    /// {sa_handler (0 = default, 1 = ignore), sa_flags, sa_restorer, sa_mask}.
    pub sigactions: [[u64; 4]; 65],
    /// Unknown syscall numbers already warned about.
    pub warned: HashSet<u64>,
    /// Counters.
    pub counters: Counters,
    /// The loaded image.
    pub image: LoadedImage,
    /// Guest ranges whose translations must be dropped before the next block runs.
    pub pending_invalidations: Vec<(u64, u64)>,
    /// The profile being recorded (written before a guest `execve` replaces the emulator).
    pub profile: Option<std::sync::Arc<crate::profile::Recorder>>,
    /// Set in the child of a fork: the dispatcher must renew per-process JIT resources.
    pub fork_child: bool,
    /// Kernel-side per-process state of the syscall layer (signal mask, thread name, ...).
    pub sys: crate::syscalls::state::SysState,
    /// The verified AOT image this process runs from, if any: the only image its guest may
    /// execve (re-executing itself).
    pub running_image: Option<vmc_compiler::aot::image::ImageId>,
}

impl Process {
    /// Loads `path` and builds its initial stack with `args` (argv[1..]) and `env`.
    pub fn spawn(
        path: &Path,
        args: &[Vec<u8>],
        env: &[Vec<u8>],
        cfg: &ProcessConfig,
    ) -> Result<Process, LoadError> {
        let data = std::fs::read(path)?;
        Self::spawn_image(&data, path, args, env, cfg)
    }

    /// Like [`Process::spawn`] for an executable already in memory; `path` names it.
    pub fn spawn_image(
        data: &[u8],
        path: &Path,
        args: &[Vec<u8>],
        env: &[Vec<u8>],
        cfg: &ProcessConfig,
    ) -> Result<Process, LoadError> {
        let mut mem = GuestMemory::new()?;
        let image = loader::load(data, &mut mem)?;
        let argv0 = cfg
            .argv0
            .clone()
            .unwrap_or_else(|| path.as_os_str().as_encoded_bytes().to_vec());
        let mut argv = vec![argv0];
        argv.extend_from_slice(args);
        let mut random = [0u8; 16];
        fill_random(&mut random);
        let execfn = path.as_os_str().as_encoded_bytes().to_vec();
        let sp = loader::setup_stack(&mut mem, &image, &argv, env, &execfn, random)?;
        let cpu = CpuState {
            pc: image.entry,
            x: {
                let mut x = [0; 32];
                x[31] = sp;
                x
            },
            ..Default::default()
        };
        let exe = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let mut p = Process {
            cpu: CpuFrame::new(cpu),
            mem,
            brk_start: image.brk,
            brk: image.brk,
            exe,
            sysroot: cfg.sysroot.clone(),
            sigactions: [[0; 4]; 65],
            warned: HashSet::new(),
            counters: Counters::default(),
            image,
            pending_invalidations: Vec::new(),
            profile: None,
            fork_child: false,
            sys: Default::default(),
            running_image: None,
        };
        // The signal mask and ignored signals survive execve (from a parent vmrun).
        crate::syscalls::signal::inherit_host_state(&mut p);
        crate::syscalls::procfs::note_image(&mut p, data, sp);
        Ok(p)
    }

    /// Maps a guest path to a host path, applying the sysroot to absolute paths that
    /// exist under it (as qemu-user's -L does).
    pub fn host_path(&self, guest: &[u8]) -> PathBuf {
        use std::os::unix::ffi::OsStrExt;
        let p = Path::new(std::ffi::OsStr::from_bytes(guest));
        if let (Some(root), true) = (&self.sysroot, p.is_absolute()) {
            let candidate = root.join(p.strip_prefix("/").unwrap_or(p));
            if candidate.symlink_metadata().is_ok() {
                return candidate;
            }
        }
        p.to_path_buf()
    }

    /// Whether a guest address range lies in the guest address space at all.
    pub fn in_space(addr: u64, len: u64) -> bool {
        addr.checked_add(len).is_some_and(|e| e <= GUEST_SPACE)
    }
}

/// Fills `buf` from the host's random source.
pub fn fill_random(buf: &mut [u8]) {
    // SAFETY: getrandom writes at most buf.len() bytes into buf.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
    if n != buf.len() as isize {
        // Fall back to something non-constant; AT_RANDOM only seeds stack protectors.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (t >> (i % 16 * 8)) as u8;
        }
    }
}
