//! Process-wide settings for the long-running server: the allocator, the runtime, the exit watchdog.

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

/// How long the server must have done no background work before freed memory is handed back.
const IDLE_BEFORE_RELEASE: std::time::Duration = std::time::Duration::from_millis(1000);

static RELEASE_GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// After a burst of background work (parses, index updates: trees allocated and freed on the
/// blocking pool leave the heap fragmented), hands freed memory back to the system once the
/// server has been idle for a moment. Call it after each piece of such work; only the last
/// call of a burst releases. Needs a tokio runtime.
pub fn release_memory_when_idle() {
    use std::sync::atomic::Ordering;
    let generation = RELEASE_GENERATION.fetch_add(1, Ordering::Relaxed) + 1;
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        tokio::time::sleep(IDLE_BEFORE_RELEASE).await;
        if RELEASE_GENERATION.load(Ordering::Relaxed) == generation {
            let _ = tokio::task::spawn_blocking(release_memory).await;
        }
    });
}

/// Hands memory the allocator keeps free (also in the middle of the heap, which the trim
/// threshold does not reach) back to the system: after a large document is closed.
pub fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages to the kernel; it is thread-safe in glibc.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The server's tokio runtime: one worker whatever the core count, and a small pool for
/// blocking work. The LSP loop runs on the main thread (`block_on`); the worker runs the
/// background tasks, which wait on the network or on timers; parses run on the blocking pool
/// and the index walk on its own threads. Starting it needs no core count, and each thread
/// not started is time saved before the first response (measured: one worker instead of two
/// starts ~0.4 ms sooner on the 2-core machine).
pub fn server_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .max_blocking_threads(8)
        // Idle parse threads end soon: each holds the stack its deepest walk touched.
        .thread_keep_alive(std::time::Duration::from_secs(2))
        .build()
}

/// Ends the process `after` from now (status 0) unless it ended before: the last word once the
/// client is gone (stdin closed), whatever state the runtime is in — a handler waiting for an
/// answer that will never come, a provider call that never returns, a task blocking a worker.
/// The orderly end (cancel tasks, flush the audit log, drain stdout) runs meanwhile and usually
/// finishes first. Armed once; later calls do nothing.
pub fn exit_after(after: std::time::Duration) {
    use std::sync::atomic::{AtomicBool, Ordering};
    static ARMED: AtomicBool = AtomicBool::new(false);
    if ARMED.swap(true, Ordering::SeqCst) {
        return;
    }
    let watchdog = std::thread::Builder::new()
        .name("exit-watchdog".into())
        .spawn(move || {
            std::thread::sleep(after);
            tracing::debug!(
                "still running {} ms after the end of the session: exiting",
                after.as_millis()
            );
            std::process::exit(0);
        });
    if let Err(e) = watchdog {
        tracing::error!("could not start the exit watchdog: {e}");
    }
}

/// Resolves when the process is asked to stop: Ctrl-C, or SIGTERM on Unix.
pub async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
