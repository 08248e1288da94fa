//! When a schedule runs: "every day at HH:MM" or a cron expression, read
//! as wall-clock time in a chosen time zone.
//!
//! Each wall-clock time a schedule names runs once. A time the clocks
//! skip (02:30 on the night of spring-forward) runs once, at the same
//! distance past the jump (03:30); a time the clocks pass twice (02:30 on
//! the night of fall-back) runs at its first pass only.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

/// A schedule's times, before the time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timing {
    /// Every day at this wall-clock time.
    Daily { hour: i8, minute: i8 },
    /// A cron expression: minute, hour, day of month, month, day of week.
    Cron(String),
}

/// Why a timing or time zone was refused, in words for the form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TimingError(String);

impl Timing {
    /// `HH:MM` (every day at), or five cron fields.
    pub fn parse(raw: &str) -> Result<Self, TimingError> {
        let raw = raw.trim();
        if let Some((h, m)) = raw.split_once(':')
            && !raw.contains(' ')
        {
            return match (h.parse::<i8>(), m.parse::<i8>()) {
                (Ok(hour), Ok(minute))
                    if (0..24).contains(&hour) && (0..60).contains(&minute) && m.len() == 2 =>
                {
                    Ok(Self::Daily { hour, minute })
                }
                _ => Err(TimingError(format!(
                    "{raw:?} is not a time of day: write it as HH:MM, 00:00 to 23:59"
                ))),
            };
        }
        let fields: Vec<&str> = raw.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(TimingError(format!(
                "{raw:?} is neither a time of day (HH:MM) nor a cron expression of five \
                 fields (minute hour day-of-month month day-of-week, e.g. \"30 4 * * 1\")"
            )));
        }
        if fields[2] != "*" && fields[4] != "*" {
            return Err(TimingError(format!(
                "{raw:?} names both days of the month and days of the week: choose one \
                 (cron would run on either, which is rarely meant)"
            )));
        }
        let expression = fields.join(" ");
        cron_of(&expression)?;
        Ok(Self::Cron(expression))
    }

    /// The first run strictly after `after`, in `zone`.
    pub fn next_after(&self, zone: &TimeZone, after: Timestamp) -> Option<Timestamp> {
        let civil_after = after.to_zoned(zone.clone()).datetime();
        self.civil_times_after(civil_after)
            .take(CANDIDATES)
            .map(|civil| run_time(zone, civil))
            .find(|&at| at > after)
    }

    /// The wall-clock times this timing names, after `after`, in order.
    fn civil_times_after(&self, after: DateTime) -> Box<dyn Iterator<Item = DateTime>> {
        match self {
            &Self::Daily { hour, minute } => {
                let mut day = after.date();
                if after.time() >= jiff::civil::time(hour, minute, 0, 0) {
                    day = day.tomorrow().unwrap_or(day);
                }
                Box::new(
                    std::iter::successors(Some(day), |d| d.tomorrow().ok())
                        .map(move |d| d.at(hour, minute, 0, 0)),
                )
            }
            Self::Cron(expression) => {
                // Wall-clock times enumerated in UTC, which has no gaps
                // or folds; the zone is applied to each afterwards.
                let schedule = cron_of(expression).expect("checked when parsed");
                let Ok(start) = after.to_zoned(TimeZone::UTC) else {
                    return Box::new(std::iter::empty());
                };
                let times: Vec<DateTime> = schedule
                    .after(start)
                    .take(CANDIDATES)
                    .map(|z| z.datetime())
                    .collect();
                Box::new(times.into_iter())
            }
        }
    }
}

/// How many wall-clock times are tried for one run: a time passed twice
/// makes the next one or two be skipped, never more.
const CANDIDATES: usize = 8;

/// The instant a wall-clock time runs at in `zone`: a skipped time as far
/// past the jump as it was into the gap, a doubled one at its first pass.
fn run_time(zone: &TimeZone, civil: DateTime) -> Timestamp {
    zone.to_ambiguous_timestamp(civil)
        .compatible()
        .unwrap_or(Timestamp::MAX)
}

fn cron_of(expression: &str) -> Result<jiff_cron::Schedule, TimingError> {
    let invalid =
        |e: &dyn fmt::Display| TimingError(format!("{expression:?} is not a cron expression: {e}"));
    let fields: Vec<&str> = expression.split(' ').collect();
    let [minute, hour, day, month, weekday] = fields[..] else {
        return Err(invalid(&"it needs five fields"));
    };
    let weekday = weekdays_by_name(weekday).map_err(|e| invalid(&e))?;
    // The crate reads seconds first, and numbers weekdays from Sunday = 1:
    // cron's numbers (Sunday = 0 or 7) are given to it as names.
    jiff_cron::Schedule::from_str(&format!("0 {minute} {hour} {day} {month} {weekday}"))
        .map_err(|e| invalid(&e))
}

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// Cron's day-of-week field with each number (0 to 7, Sunday twice) as a
/// name; a range that ends on Sunday = 7 ends on Saturday and adds Sunday.
fn weekdays_by_name(field: &str) -> Result<String, String> {
    let name = |n: &str| -> Result<&'static str, String> {
        match n.parse::<usize>() {
            Ok(n) if n <= 7 => Ok(WEEKDAYS[n % 7]),
            Ok(_) => Err(format!("day of the week {n} is past 7")),
            Err(_) => Ok(""),
        }
    };
    field
        .split(',')
        .map(|part| {
            let (range, step) = match part.split_once('/') {
                Some((range, step)) => (range, Some(step)),
                None => (part, None),
            };
            let named = match range.split_once('-') {
                Some((from, "7")) if step.is_none() && !name(from)?.is_empty() => {
                    format!("{}-Sat,Sun", name(from)?)
                }
                Some((from, to)) => {
                    let (f, t) = (name(from)?, name(to)?);
                    format!(
                        "{}-{}",
                        if f.is_empty() { from } else { f },
                        if t.is_empty() { to } else { t }
                    )
                }
                None => match name(range)? {
                    "" => range.to_owned(),
                    n => n.to_owned(),
                },
            };
            Ok(match step {
                Some(step) => format!("{named}/{step}"),
                None => named,
            })
        })
        .collect::<Result<Vec<_>, String>>()
        .map(|parts| parts.join(","))
}

impl fmt::Display for Timing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Daily { hour, minute } => write!(f, "{hour:02}:{minute:02}"),
            Self::Cron(expression) => f.write_str(expression),
        }
    }
}

/// The host's time zone by its IANA name ("UTC" when it has none).
pub fn host_zone_name() -> String {
    TimeZone::system().iana_name().unwrap_or("UTC").to_owned()
}

/// A time zone by its IANA name ("Europe/Berlin", "UTC").
pub fn zone(name: &str) -> Result<TimeZone, TimingError> {
    TimeZone::get(name.trim()).map_err(|_| {
        TimingError(format!(
            "{name:?} is not a time zone: use a name like Europe/Berlin, America/New_York or UTC"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(zone: &TimeZone, y: i16, mo: i8, d: i8, h: i8, mi: i8) -> Timestamp {
        jiff::civil::date(y, mo, d)
            .at(h, mi, 0, 0)
            .to_zoned(zone.clone())
            .unwrap()
            .timestamp()
    }

    /// The next `n` runs after `from`, as local "YYYY-MM-DD HH:MM+offset".
    fn runs(timing: &str, zone_name: &str, from: Timestamp, n: usize) -> Vec<String> {
        let timing = Timing::parse(timing).unwrap();
        let zone = zone(zone_name).unwrap();
        std::iter::successors(timing.next_after(&zone, from), |&t| {
            timing.next_after(&zone, t)
        })
        .take(n)
        .map(|t| t.to_zoned(zone.clone()).strftime("%F %H:%M%:z").to_string())
        .collect()
    }

    #[test]
    fn a_daily_time_runs_once_a_day_in_its_zone() {
        let berlin = zone("Europe/Berlin").unwrap();
        assert_eq!(
            runs("04:30", "Europe/Berlin", at(&berlin, 2026, 6, 1, 12, 0), 2),
            ["2026-06-02 04:30+02:00", "2026-06-03 04:30+02:00"]
        );
        assert_eq!(
            runs("04:30", "Europe/Berlin", at(&berlin, 2026, 6, 1, 4, 29), 1),
            ["2026-06-01 04:30+02:00"]
        );
    }

    #[test]
    fn a_time_the_clocks_skip_runs_once_after_the_jump() {
        // Berlin springs from 02:00 to 03:00 on 29 March 2026.
        let berlin = zone("Europe/Berlin").unwrap();
        assert_eq!(
            runs("02:30", "Europe/Berlin", at(&berlin, 2026, 3, 28, 12, 0), 3),
            [
                "2026-03-29 03:30+02:00",
                "2026-03-30 02:30+02:00",
                "2026-03-31 02:30+02:00"
            ]
        );
    }

    #[test]
    fn a_time_the_clocks_pass_twice_runs_once() {
        // Berlin falls from 03:00 back to 02:00 on 25 October 2026.
        let berlin = zone("Europe/Berlin").unwrap();
        let from = at(&berlin, 2026, 10, 24, 12, 0);
        assert_eq!(
            runs("02:30", "Europe/Berlin", from, 3),
            [
                "2026-10-25 02:30+02:00",
                "2026-10-26 02:30+01:00",
                "2026-10-27 02:30+01:00"
            ]
        );
        // Looked at during the second pass, the day's run is behind.
        let timing = Timing::parse("02:30").unwrap();
        let second_pass = "2026-10-25T01:10:00Z".parse::<Timestamp>().unwrap();
        let next = timing.next_after(&berlin, second_pass).unwrap();
        assert_eq!(
            next.to_zoned(berlin).strftime("%F %H:%M%:z").to_string(),
            "2026-10-26 02:30+01:00"
        );
        // A cron time in the doubled hour, likewise.
        assert_eq!(
            runs("30 2 * * *", "Europe/Berlin", from, 2),
            ["2026-10-25 02:30+02:00", "2026-10-26 02:30+01:00"]
        );
    }

    #[test]
    fn cron_expressions_name_weekdays_and_steps() {
        let utc = zone("UTC").unwrap();
        // 7 December 2026 is a Monday.
        assert_eq!(
            runs("0 4 * * 1", "UTC", at(&utc, 2026, 12, 6, 0, 0), 2),
            ["2026-12-07 04:00+00:00", "2026-12-14 04:00+00:00"]
        );
        assert_eq!(
            runs("*/20 * * * *", "UTC", at(&utc, 2026, 12, 6, 0, 5), 3),
            [
                "2026-12-06 00:20+00:00",
                "2026-12-06 00:40+00:00",
                "2026-12-06 01:00+00:00"
            ]
        );
        // Midnight in UTC is the evening before in New York.
        assert_eq!(
            runs(
                "0 22 * * *",
                "America/New_York",
                at(&utc, 2026, 12, 6, 0, 0),
                1
            ),
            ["2026-12-05 22:00-05:00"]
        );
    }

    #[test]
    fn weekdays_are_numbered_as_cron_numbers_them() {
        let utc = zone("UTC").unwrap();
        let from = at(&utc, 2026, 12, 6, 0, 0); // a Sunday
        let days = |weekday: &str| -> Vec<String> {
            runs(&format!("0 4 * * {weekday}"), "UTC", from, 3)
                .iter()
                .map(|r| {
                    let day: jiff::civil::Date = r[..10].parse().unwrap();
                    day.strftime("%a").to_string()
                })
                .collect()
        };
        assert_eq!(days("0"), ["Sun", "Sun", "Sun"]);
        assert_eq!(days("7"), ["Sun", "Sun", "Sun"]);
        assert_eq!(days("1-2"), ["Mon", "Tue", "Mon"]);
        assert_eq!(days("5-7"), ["Sun", "Fri", "Sat"]);
        assert_eq!(days("sat,sun"), ["Sun", "Sat", "Sun"]);
        assert_eq!(days("1,3"), ["Mon", "Wed", "Mon"]);
    }

    #[test]
    fn mistakes_are_named() {
        for bad in [
            "24:00",
            "4:3",
            "12:60",
            "* * * *",
            "61 * * * *",
            "every day",
            "0 4 * * 8",
            "0 4 1 * 1",
        ] {
            let error = Timing::parse(bad).unwrap_err().to_string();
            assert!(error.contains(bad), "{bad}: {error}");
        }
        assert!(
            zone("Mars/Olympus")
                .unwrap_err()
                .to_string()
                .contains("Europe/Berlin")
        );
        assert_eq!(Timing::parse(" 07:05 ").unwrap().to_string(), "07:05");
        assert_eq!(
            Timing::parse("0  4 * * 1").unwrap().to_string(),
            "0 4 * * 1"
        );
    }
}
