//! Small text helpers shared by the error messages and the readiness checks: durations and I/O
//! failures said the way people write them.
//!
//! They live here, below both `error` and `ready`, so that those two modules import from one
//! place rather than from each other.

use std::io;
use std::time::Duration;

/// A duration as people write it: `10s`, `1.5s`, `250ms`, `2m`, `90s`.
pub(crate) fn human(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis == 0 {
        return format!("{}µs", duration.as_micros());
    }
    if millis < 1000 {
        return format!("{millis}ms");
    }
    if millis.is_multiple_of(60_000) {
        return format!("{}m", millis / 60_000);
    }
    if millis.is_multiple_of(1000) {
        return format!("{}s", millis / 1000);
    }
    let text = format!("{}.{:03}", millis / 1000, millis % 1000);
    format!("{}s", text.trim_end_matches('0'))
}

/// A short lowercase reason for an I/O failure: "connection refused", not
/// "Connection refused (os error 111)".
pub(crate) fn io_reason(error: &io::Error) -> String {
    let text = error.to_string();
    let text = match text.find(" (os error") {
        Some(end) => &text[..end],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        let ms = Duration::from_millis;
        assert_eq!(human(ms(10_000)), "10s");
        assert_eq!(human(ms(1_500)), "1.5s");
        assert_eq!(human(ms(1_250)), "1.25s");
        assert_eq!(human(ms(250)), "250ms");
        assert_eq!(human(ms(120_000)), "2m");
        assert_eq!(human(ms(90_000)), "90s");
        assert_eq!(human(Duration::from_micros(300)), "300µs");
    }

    #[test]
    fn io_reasons_are_short_and_lowercase() {
        let refused = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(io_reason(&refused), "connection refused");
        assert_eq!(io_reason(&io::Error::other("Boom")), "boom");
    }
}
