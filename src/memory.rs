//! Process-wide allocator settings, applied before any thread starts.

/// Arenas per core: glibc's default is eight. Two in all made threads queue for malloc on
/// the metadata path (issue 8, figure 1: 0.53-0.71 of the baseline instead of 0.74); four
/// per core cost nothing measurable there.
const ARENAS_PER_CORE: usize = 4;

/// Caps glibc's malloc at [`ARENAS_PER_CORE`] arenas per core. Each thread that allocates
/// may get its own arena, and each keeps what it freed for itself: with Parquet encoded on
/// the blocking pool and downloads landing on every worker, the default held ~45 MB more at
/// the audio bench's peak (148 MB against 103 MB on a 2-core machine). Elsewhere (musl,
/// macOS) the allocator is left as it is.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let arenas = libc::c_int::try_from(cores * ARENAS_PER_CORE).unwrap_or(libc::c_int::MAX);
        // SAFETY: `mallopt` only sets a malloc parameter; called before threads start, and
        // a refused value (return 0) leaves glibc's default in place.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}
