//! Process limits both long-lived network commands need.

/// Sets the soft open-files limit to the hard one; returns the limit now in force.
///
/// Distributions often start processes with a soft limit of 1,024 descriptors while allowing
/// far more; a server holding one WebSocket per test session (and the bench that simulates
/// them) would refuse connections long before the machine runs out of anything real.
pub fn raise_nofile_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return raised.rlim_cur;
            }
        }
    }
    limit.rlim_cur
}
