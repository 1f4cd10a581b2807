// The one exception to the crate's `forbid(unsafe_code)`: the glibc heap settings below, which
// have no safe binding.
#![deny(unsafe_code)]

fn main() -> std::process::ExitCode {
    heap::return_freed_memory();
    fortisync::cli::main()
}

/// glibc's allocator keeps what a burst freed: 1,000 reconciles in flight (kube-runtime spawns
/// each as a task, the HTTP connections' read buffers, the batches' plans) make a heap of about
/// 37 MiB of which 14 MiB stay live once they are done, yet the process stays at its peak —
/// freed chunks in the middle of an arena are not given back by `free`, and each thread that
/// allocated got an arena of its own. So the arenas are capped and, once the heap has shrunk
/// by a few MiB since the last look, `malloc_trim` hands the free pages back to the kernel.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
mod heap {
    use std::time::Duration;

    /// Arenas at most: the runtime's workers contend little (two on the 2-core nodes this is
    /// sized for), and every extra arena keeps its own free chunks.
    const ARENAS: i32 = 2;
    /// How much the heap must have shrunk since the last trim before the next: a trim walks
    /// every free chunk, so it runs after a burst, not on every small change.
    const SHRUNK: usize = 4 << 20;
    /// How often the heap is looked at.
    const EVERY: Duration = Duration::from_secs(1);

    pub fn return_freed_memory() {
        // SAFETY: `mallopt` only changes a tunable; called before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        }
        let _ = std::thread::Builder::new()
            .name("heap-trim".into())
            .stack_size(64 * 1024)
            .spawn(|| {
                let mut high = 0usize;
                loop {
                    std::thread::sleep(EVERY);
                    // SAFETY: `mallinfo2` reads the allocator's counters under its locks.
                    let in_use = unsafe { libc::mallinfo2() }.uordblks;
                    high = high.max(in_use);
                    if high - in_use >= SHRUNK {
                        // SAFETY: `malloc_trim` only releases free pages, under the
                        // allocator's locks; nothing points into them.
                        unsafe {
                            libc::malloc_trim(0);
                        }
                        high = in_use;
                    }
                }
            });
    }
}

/// Other allocators return freed memory by themselves, or have no such settings.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod heap {
    pub fn return_freed_memory() {}
}
