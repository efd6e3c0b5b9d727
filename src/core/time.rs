//! Unix-millisecond timestamps and their ISO 8601 (UTC) text form.
//!
//! The worker takes "now" from the JavaScript clock (`SystemTime::now()` panics on
//! wasm), so every function here receives time as a value.

/// Milliseconds since the Unix epoch, UTC.
pub type UnixMillis = i64;

pub const MS_PER_SECOND: i64 = 1_000;
pub const MS_PER_DAY: i64 = 86_400_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let year_of_era = y - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Inverse of [`days_from_civil`]: (year, month, day).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

/// `2026-11-29T21:31:05.123Z`.
pub fn format_iso(ms: UnixMillis) -> String {
    let days = ms.div_euclid(MS_PER_DAY);
    let in_day = ms.rem_euclid(MS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        (in_day / 60_000) % 60,
        (in_day / 1000) % 60,
        in_day % 1000
    )
}

/// Which end of a day a bare date (`2026-11-29`) stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DateBound {
    StartOfDay,
    EndOfDay,
}

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses an ISO 8601 date (`YYYY-MM-DD`) or date-time
/// (`YYYY-MM-DDTHH:MM[:SS[.fff]][Z|±HH:MM]`, UTC when no offset is given).
/// A bare date is the start or the end of that UTC day, as `bound` says.
pub fn parse_iso(input: &str, bound: DateBound) -> Option<UnixMillis> {
    let (date, time) = match input.find(['T', 't', ' ']) {
        Some(i) => (input.get(..i)?, Some(input.get(i + 1..)?)),
        None => (input, None),
    };
    let mut parts = date.split('-');
    let (year, month, day) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || year.len() != 4 || month.len() != 2 || day.len() != 2 {
        return None;
    }
    let (year, month, day) = (digits(year)?, digits(month)?, digits(day)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let day_start = days_from_civil(year, month, day) * MS_PER_DAY;
    let Some(time) = time else {
        return Some(match bound {
            DateBound::StartOfDay => day_start,
            DateBound::EndOfDay => day_start + MS_PER_DAY - 1,
        });
    };
    let (clock, offset_ms) = split_offset(time)?;
    let (hms, fraction) = match clock.split_once('.') {
        Some((hms, frac)) => (hms, Some(frac)),
        None => (clock, None),
    };
    let mut fields = hms.split(':');
    let hour = fields.next().filter(|s| s.len() == 2).and_then(digits)?;
    let minute = fields.next().filter(|s| s.len() == 2).and_then(digits)?;
    let second = match fields.next() {
        Some(s) if s.len() == 2 => digits(s)?,
        Some(_) => return None,
        None => 0,
    };
    if fields.next().is_some() || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let millis = match fraction {
        None => 0,
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            let padded = format!("{f:0<3}");
            digits(padded.get(..3)?)?
        }
        Some(_) => return None,
    };
    Some(day_start + hour * 3_600_000 + minute * 60_000 + second * 1000 + millis - offset_ms)
}

/// Splits `HH:MM:SS(.fff)` from a trailing `Z` or `±HH:MM` offset (in ms east of UTC).
fn split_offset(time: &str) -> Option<(&str, i64)> {
    if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        return Some((clock, 0));
    }
    if let Some(i) = time.rfind(['+', '-']) {
        let (clock, offset) = (time.get(..i)?, time.get(i..)?);
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let (h, m) = offset.get(1..)?.split_once(':')?;
        if h.len() != 2 || m.len() != 2 {
            return None;
        }
        let (h, m) = (digits(h)?, digits(m)?);
        if h > 23 || m > 59 {
            return None;
        }
        return Some((clock, sign * (h * 3_600_000 + m * 60_000)));
    }
    Some((time, 0))
}

/// Parses an HTTP-date in the IMF-fixdate form (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn parse_http_date(input: &str) -> Option<UnixMillis> {
    let rest = input.trim().split_once(", ")?.1;
    let mut parts = rest.split(' ');
    let day = digits(parts.next()?)?;
    let month = match parts.next()? {
        "Jan" => 1, "Feb" => 2, "Mar" => 3, "Apr" => 4, "May" => 5, "Jun" => 6,
        "Jul" => 7, "Aug" => 8, "Sep" => 9, "Oct" => 10, "Nov" => 11, "Dec" => 12,
        _ => return None,
    };
    let year = parts.next()?;
    let clock = parts.next()?;
    if parts.next()? != "GMT" || parts.next().is_some() || year.len() != 4 {
        return None;
    }
    parse_iso(&format!("{year}-{month:02}-{day:02}T{clock}Z"), DateBound::StartOfDay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_epoch_and_recent_times() {
        assert_eq!(format_iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_iso(1_533_204_620_000), "2018-08-02T10:10:20.000Z");
        assert_eq!(format_iso(951_782_400_123), "2000-02-29T00:00:00.123Z");
    }

    #[test]
    fn round_trips_every_day_for_several_centuries() {
        for day in (-200_000..200_000).step_by(7) {
            let ms = day * MS_PER_DAY + 45_296_789;
            let text = format_iso(ms);
            assert_eq!(parse_iso(&text, DateBound::StartOfDay), Some(ms), "{text}");
        }
    }

    #[test]
    fn bare_dates_cover_the_whole_day() {
        let start = parse_iso("2026-11-29", DateBound::StartOfDay).unwrap();
        let end = parse_iso("2026-11-29", DateBound::EndOfDay).unwrap();
        assert_eq!(format_iso(start), "2026-11-29T00:00:00.000Z");
        assert_eq!(format_iso(end), "2026-11-29T23:59:59.999Z");
    }

    #[test]
    fn offsets_and_fractions() {
        let utc = parse_iso("2026-11-29T10:00:00Z", DateBound::StartOfDay);
        assert_eq!(parse_iso("2026-11-29T12:00:00+02:00", DateBound::StartOfDay), utc);
        assert_eq!(parse_iso("2026-11-29T10:00", DateBound::StartOfDay), utc);
        let frac = parse_iso("2026-11-29T10:00:00.5Z", DateBound::StartOfDay).unwrap();
        assert_eq!(frac - utc.unwrap(), 500);
    }

    #[test]
    fn rejects_malformed_dates() {
        for bad in [
            "", "2026", "2026-13-01", "2026-02-30", "2025-02-29", "26-11-29", "2026-11-29T25:00",
            "2026-11-29T10:61", "2026-11-29T10:00:00+2", "yesterday", "2026-11-29T", "2026-1-1",
            "2026-11-29T10:00:00.Z", "２０２６-11-29", "2026-11-29T10:00:00.1234567890Z",
        ] {
            assert_eq!(parse_iso(bad, DateBound::StartOfDay), None, "{bad:?}");
        }
    }

    #[test]
    fn http_dates() {
        let ms = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(format_iso(ms), "1994-11-06T08:49:37.000Z");
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("120"), None);
    }

    // The rules above, checked against an independent calendar (chrono) and at every
    // boundary of the grammar.

    use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, TimeZone};
    use proptest::prelude::*;

    /// chrono counts days from 0001-01-01 (day 1); 1970-01-01 is its day 719,163.
    const CE_DAY_OF_EPOCH: i64 = 719_163;

    fn chrono_date(days: i64) -> NaiveDate {
        NaiveDate::from_num_days_from_ce_opt((days + CE_DAY_OF_EPOCH) as i32).unwrap()
    }

    #[test]
    fn days_in_month_matches_the_gregorian_calendar() {
        for year in -800..=2800 {
            for month in 1..=12 {
                let first = NaiveDate::from_ymd_opt(year as i32, month as u32, 1).unwrap();
                let next = if month == 12 {
                    NaiveDate::from_ymd_opt(year as i32 + 1, 1, 1)
                } else {
                    NaiveDate::from_ymd_opt(year as i32, month as u32 + 1, 1)
                }
                .unwrap();
                assert_eq!(days_in_month(year, month), (next - first).num_days(), "{year}-{month}");
            }
        }
        assert_eq!(days_in_month(2024, 0), 0);
        assert_eq!(days_in_month(2024, 13), 0);
    }

    #[test]
    fn leap_days_by_the_century_rules() {
        assert!(parse_iso("2000-02-29", DateBound::StartOfDay).is_some());
        assert!(parse_iso("2024-02-29", DateBound::StartOfDay).is_some());
        assert_eq!(parse_iso("1900-02-29", DateBound::StartOfDay), None);
        assert_eq!(parse_iso("2100-02-29", DateBound::StartOfDay), None);
        assert_eq!(parse_iso("2023-02-29", DateBound::StartOfDay), None);
        assert_eq!(parse_iso("2026-04-31", DateBound::StartOfDay), None);
        assert_eq!(parse_iso("2026-01-00", DateBound::StartOfDay), None);
        assert_eq!(parse_iso("2026-00-10", DateBound::StartOfDay), None);
        assert_eq!(parse_iso("2026-12-31", DateBound::StartOfDay), Some(1_798_675_200_000));
        assert_eq!(parse_iso("2026-01-01", DateBound::StartOfDay), Some(1_767_225_600_000));
    }

    #[test]
    fn fixed_instants() {
        assert_eq!(format_iso(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(format_iso(-62_167_219_200_000), "0000-01-01T00:00:00.000Z");
        assert_eq!(format_iso(253_402_300_799_999), "9999-12-31T23:59:59.999Z");
        assert_eq!(format_iso(1_764_451_865_123), "2025-11-29T21:31:05.123Z");
        assert_eq!(parse_iso("0000-01-01", DateBound::StartOfDay), Some(-62_167_219_200_000));
        assert_eq!(parse_iso("0000-02-29", DateBound::EndOfDay), Some(-62_162_035_200_001));
        assert_eq!(parse_iso("1969-12-31", DateBound::EndOfDay), Some(-1));
        assert_eq!(parse_iso("2026-11-29T23:59:59.999Z", DateBound::StartOfDay), Some(1_795_996_799_999));
    }

    #[test]
    fn field_boundaries() {
        let at = |s: &str| parse_iso(s, DateBound::StartOfDay);
        let base = at("2026-11-29T00:00:00Z").unwrap();
        assert_eq!(at("2026-11-29T23:59:59Z"), Some(base + 86_399_000));
        assert_eq!(at("2026-11-29T01:02:03Z"), Some(base + 3_723_000));
        for bad in ["2026-11-29T24:00:00Z", "2026-11-29T10:60:00Z", "2026-11-29T10:00:60Z"] {
            assert_eq!(at(bad), None, "{bad}");
        }
        // Fractions: 1 to 9 digits, milliseconds kept, the rest dropped.
        assert_eq!(at("2026-11-29T00:00:00.1Z"), Some(base + 100));
        assert_eq!(at("2026-11-29T00:00:00.12Z"), Some(base + 120));
        assert_eq!(at("2026-11-29T00:00:00.123456789Z"), Some(base + 123));
        assert_eq!(at("2026-11-29T00:00:00.999999999Z"), Some(base + 999));
        assert_eq!(at("2026-11-29T00:00:00.1a3Z"), None);
        assert_eq!(at("2026-11-29T00:00:00.+12Z"), None);
        // Offsets: ±HH:MM up to 23:59, a lowercase z, and the three separators.
        assert_eq!(at("2026-11-29T23:59:00+23:59"), Some(base));
        assert_eq!(at("2026-11-28T00:01:00-23:59"), Some(base));
        assert_eq!(at("2026-11-29T05:30-05:30"), Some(base + 11 * 3_600_000));
        assert_eq!(at("2026-11-29t00:00:00z"), Some(base));
        assert_eq!(at("2026-11-29 00:00:00Z"), Some(base));
        for bad in [
            "2026-11-29T00:00:00+24:00", "2026-11-29T00:00:00+00:60", "2026-11-29T00:00:00+0000",
            "2026-11-29T00:00:00+1:00", "2026-11-29T00:00:00+01:0", "2026-11-29T00:00:00+a1:00",
            "2026-11-29T00:00:00+01:+1", "2026-11-29T00:00:00+",
        ] {
            assert_eq!(at(bad), None, "{bad}");
        }
        // Digits only, exactly as many as the field takes.
        for bad in [
            "2026-+1-29", "+026-11-29", "2026-11-+9", "2026-11-29T+1:00", "2026-11-29T10:+1",
            "2026-11-29T10:00:+1", "2026-11-29T1:00", "2026-11-29T10:0", "2026-11-29T10:00:0",
            "2026-11-29T10:00:000", "2026-11-29T10:00:00:00", "2026-11-29-01", "20261-11-29",
            "2026-011-29", "2026-11-029", "2026-11-29T10", "2026-11-29T",
        ] {
            assert_eq!(at(bad), None, "{bad}");
        }
        assert_eq!(digits("+5"), None);
        assert_eq!(digits(""), None);
        assert_eq!(digits("07"), Some(7));
    }

    #[test]
    fn http_dates_for_every_month() {
        for (i, name) in
            ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
                .iter()
                .enumerate()
        {
            let text = format!("Tue, 09 {name} 2025 07:08:09 GMT");
            let want = NaiveDate::from_ymd_opt(2025, i as u32 + 1, 9).unwrap()
                .and_hms_opt(7, 8, 9).unwrap().and_utc().timestamp_millis();
            assert_eq!(parse_http_date(&text), Some(want), "{text}");
        }
        assert_eq!(parse_http_date(" Sun, 06 Nov 1994 08:49:37 GMT "), Some(784_111_777_000));
        for bad in [
            "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 06 Nov 1994 08:49:37 GMT extra",
            "Sun, 06 Nov 94 08:49:37 GMT", "Sun, 06 Nov 19945 08:49:37 GMT", "Sun, 06 nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37", "Sun, 06 Nov 1994", "Sun, 06 Nov", "Sun, 06", "Sun, xx Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn civil_dates_match_chrono(days in -95_000_000i64..95_000_000) {
            let date = chrono_date(days);
            let want = (i64::from(date.year()), i64::from(date.month()), i64::from(date.day()));
            prop_assert_eq!(civil_from_days(days), want);
            prop_assert_eq!(days_from_civil(want.0, want.1, want.2), days);
        }

        #[test]
        fn civil_dates_match_chrono_near_year_zero(days in -800_000i64..-700_000) {
            let date = chrono_date(days);
            let want = (i64::from(date.year()), i64::from(date.month()), i64::from(date.day()));
            prop_assert_eq!(civil_from_days(days), want);
            prop_assert_eq!(days_from_civil(want.0, want.1, want.2), days);
        }

        #[test]
        fn format_matches_chrono(ms in -62_167_219_200_000i64..253_402_300_800_000) {
            let want = DateTime::from_timestamp_millis(ms).unwrap()
                .format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
            prop_assert_eq!(format_iso(ms), want);
        }

        #[test]
        fn parse_matches_chrono(
            ms in 0i64..253_402_300_800_000,
            offset_minutes in -(23 * 60 + 59)..=(23 * 60 + 59),
            fraction_digits in 0usize..=9,
            separator in prop::sample::select(vec!['T', 't', ' ']),
        ) {
            let zone = FixedOffset::east_opt(offset_minutes * 60).unwrap();
            let local = zone.timestamp_millis_opt(ms).unwrap();
            if local.year() < 0 || local.year() > 9999 {
                return Ok(());
            }
            let fraction = match fraction_digits {
                0 => String::new(),
                n => format!(".{}", &format!("{:09}", local.timestamp_subsec_nanos())[..n]),
            };
            let text = format!(
                "{}{separator}{}{fraction}{}",
                local.format("%Y-%m-%d"), local.format("%H:%M:%S"), local.format("%:z"),
            );
            // Digits past the third are dropped, never rounded.
            let step = [1000, 100, 10, 1][fraction_digits.min(3)];
            let want = ms - ms.rem_euclid(step);
            prop_assert_eq!(parse_iso(&text, DateBound::StartOfDay), Some(want), "{}", text);
        }
    }
}
