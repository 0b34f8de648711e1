//! UTC calendar arithmetic on Unix seconds: civil dates to day counts and back, and the
//! ISO 8601 form used in logs. No time zones, no I/O; shared by SigV4, logging and IMAP dates.

pub fn is_leap(y: u64) -> bool {
    y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400))
}

pub fn days_in_month(y: u64, m: u64) -> u64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Validated civil UTC time to Unix seconds; `None` for out-of-range fields or
/// instants before 1970.
pub fn from_civil(y: u64, mo: u64, d: u64, h: u64, mi: u64, s: u64) -> Option<u64> {
    if y < 1970 || !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) {
        return None;
    }
    if h > 23 || mi > 59 || s > 59 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s)
}

/// Days since 1970-01-01 of a valid date from 1970 on.
pub fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    days_from_civil_signed(y as i64, m as i64, d as i64).max(0) as u64
}

/// Days since 1970-01-01 of a valid date, negative before it (H. Hinnant's algorithm).
pub fn days_from_civil_signed(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of a day count since 1970-01-01.
pub fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// `2026-11-28T18:33:03Z` for a Unix time.
pub fn utc_timestamp(unix: u64) -> String {
    let (y, mo, d) = civil_from_days(unix / 86_400);
    let s = unix % 86_400;
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(utc_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_timestamp(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_timestamp(1_440_938_160), "2015-08-30T12:36:00Z");
    }

    #[test]
    fn civil_round_trip() {
        for days in (0..200_000).step_by(97) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(from_civil(2000, 2, 29, 0, 0, 0), Some(951_782_400));
        assert_eq!(from_civil(1900, 2, 29, 0, 0, 0), None);
        assert_eq!(from_civil(2001, 2, 29, 0, 0, 0), None);
    }
}
