//! Calendar arithmetic for signing dates, by hand (UTC, proleptic
//! Gregorian), so no date crate is needed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the epoch, `None` before 1970.
pub(crate) fn epoch_seconds(time: SystemTime) -> Option<u64> {
    time.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

/// `(year, month, day)` of the day `days` after 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month as u32, day as u32)
}

/// Days from 1970-01-01 to `(year, month, day)`.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = year - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month = i64::from(month);
    let month_index = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * month_index + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// A signing date, `YYYYMMDDTHHMMSSZ`, on the stack.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct AmzDate([u8; 16]);

impl AmzDate {
    /// The date as text.
    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("an amz date is ascii digits, T and Z")
    }

    /// The day, `YYYYMMDD`.
    pub(crate) fn day(&self) -> &str {
        &self.as_str()[..8]
    }
}

impl std::ops::Deref for AmzDate {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

/// Writes `value` as `out.len()` decimal digits (zero-padded) into `out`.
fn put_digits(out: &mut [u8], mut value: u64) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// `YYYYMMDDTHHMMSSZ`, `None` outside years 1970..=9999.
pub(crate) fn amz_date(time: SystemTime) -> Option<AmzDate> {
    let seconds = epoch_seconds(time)?;
    let days = i64::try_from(seconds / 86_400).ok()?;
    let (year, month, day) = civil_from_days(days);
    if year > 9_999 {
        return None;
    }
    let of_day = seconds % 86_400;
    let mut text = *b"00000000T000000Z";
    put_digits(&mut text[0..4], u64::try_from(year).ok()?);
    put_digits(&mut text[4..6], u64::from(month));
    put_digits(&mut text[6..8], u64::from(day));
    put_digits(&mut text[9..11], of_day / 3_600);
    put_digits(&mut text[11..13], of_day / 60 % 60);
    put_digits(&mut text[13..15], of_day % 60);
    Some(AmzDate(text))
}

/// Parses `YYYYMMDDTHHMMSSZ`.
pub(crate) fn parse_amz_date(text: &str) -> Option<SystemTime> {
    let bytes = text.as_bytes();
    if bytes.len() != 16
        || bytes[8] != b'T'
        || bytes[15] != b'Z'
        || !bytes[..8]
            .iter()
            .chain(&bytes[9..15])
            .all(u8::is_ascii_digit)
    {
        return None;
    }
    let number = |range: std::ops::Range<usize>| text[range].parse::<u32>().ok();
    let (year, month, day) = (number(0..4)?, number(4..6)?, number(6..8)?);
    let (hour, minute, second) = (number(9..11)?, number(11..13)?, number(13..15)?);
    if !(1..=12).contains(&month) || day == 0 || day > 31 || hour > 23 || minute > 59 || second > 59
    {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    if civil_from_days(days) != (i64::from(year), month, day) {
        return None;
    }
    let seconds = u64::try_from(days).ok()? * 86_400
        + u64::from(hour) * 3_600
        + u64::from(minute) * 60
        + u64::from(second);
    Some(UNIX_EPOCH + Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_known_dates() {
        let t = UNIX_EPOCH + Duration::from_secs(1_369_353_600);
        assert_eq!(amz_date(t).as_deref(), Some("20130524T000000Z"));
        assert_eq!(parse_amz_date("20130524T000000Z"), Some(t));
        assert_eq!(amz_date(UNIX_EPOCH).as_deref(), Some("19700101T000000Z"));
        let leap = UNIX_EPOCH + Duration::from_secs(951_825_599);
        assert_eq!(amz_date(leap).as_deref(), Some("20000229T115959Z"));
        assert_eq!(parse_amz_date("20010229T000000Z"), None);
        assert_eq!(parse_amz_date("2013-05-24T0000"), None);
    }

    #[test]
    fn round_trips_many_days() {
        for days in (0..3_000_000i64).step_by(997) {
            let t = UNIX_EPOCH + Duration::from_secs(days as u64 * 86_400 + 4_321);
            if let Some(text) = amz_date(t) {
                assert_eq!(parse_amz_date(&text), Some(t), "{}", text.as_str());
            }
        }
    }
}
