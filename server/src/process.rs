//! Process-wide settings for the long-running server: the allocator's behaviour and the runtime.

/// Tunes glibc's allocator for a server that allocates and frees syntax trees on a pool of
/// threads: one arena shared by all threads (by default each thread that allocates gets its
/// own, up to 8 per core, and each keeps the trees freed in it), and freed memory at the top
/// of the heap handed back to the system from 128 KiB on.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; it is called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * 1024);
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: libc::c_int = 1;

/// The server's tokio runtime: two workers whatever the core count (the LSP loop is one task
/// and agents wait on the network; parses run on the blocking pool, the index walk on its own
/// threads), so starting it needs no core count, and a small pool for blocking work.
pub fn server_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .max_blocking_threads(8)
        .build()
}
