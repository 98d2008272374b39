//! Dates and timestamps from text: Spark's datetime patterns (`M/d/yy`, `H:mm`,
//! `yyyy-MM-dd'T'HH:mm:ss[.SSS][XXX]`) and ISO-8601, parsed with `jiff`'s calendar and
//! time-zone database into [`Date`] (days since 1970-01-01, Spark's `DateType`) and
//! [`Timestamp`] (µs since the Unix epoch, UTC unless the text or the pattern's zone
//! says otherwise).
//!
//! For serde record types:
//!
//! * [`Date`] fields read ISO dates (`2014-03-10`) as they are;
//! * [`iso_timestamp`] (`#[serde(with = "rivulet::format::date::iso_timestamp")]`)
//!   reads ISO-8601 timestamps into [`Timestamp`] fields;
//! * [`date_format!`](crate::date_format) and [`timestamp_format!`](crate::timestamp_format)
//!   make a `with` module for a pattern:
//!
//! ```
//! use rivulet::format::date::Date;
//! use rivulet::Timestamp;
//!
//! rivulet::date_format!(mod sensor_date = "M/d/yy");
//! rivulet::timestamp_format!(mod sensor_time = "H:mm");
//!
//! #[derive(Debug, serde::Deserialize)]
//! struct Reading {
//!     resid: String,
//!     #[serde(with = "sensor_date")]
//!     date: Date,
//!     #[serde(with = "sensor_time")]
//!     time: Timestamp,
//!     psi: f64,
//! }
//!
//! let mut csv = csv::ReaderBuilder::new()
//!     .has_headers(false)
//!     .from_reader("COHUTTA,3/10/14,1:01,0.4\n".as_bytes());
//! let reading: Reading = csv.deserialize().next().unwrap()?;
//! assert_eq!(reading.date, Date::from_ymd(2014, 3, 10).unwrap());
//! assert_eq!(reading.date.to_string(), "2014-03-10");
//! // A time without a date falls on 1970-01-01: add it to the date's midnight.
//! let at = reading.date.to_timestamp().0 + reading.time.0;
//! assert_eq!(at, rivulet::format::date::parse_iso_timestamp("2014-03-10T01:01:00Z")?.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Pattern letters
//!
//! Spark's (Java's `DateTimeFormatter`) letters, case-insensitive for names, strict
//! about the rest (the whole text must match):
//!
//! | letter | meaning | counts |
//! |---|---|---|
//! | `y`, `u` | year | `yy`: two digits, 2000–2099 (Spark 3); `y`: 1 or more digits; `yyyy`: at least 4 |
//! | `M`, `L` | month | `M`: 1–2 digits; `MM`: 2 digits; `MMM`: `Jan`; `MMMM`: `January` |
//! | `d` | day of month | `d`: 1–2 digits; `dd`: 2 |
//! | `D` | day of year | `D`: 1–3 digits; `DDD`: 3 |
//! | `H` | hour 0–23 | `H`: 1–2 digits; `HH`: 2 |
//! | `k` | hour 1–24 | as `H` |
//! | `h` | hour 1–12 (with `a`; AM without) | as `H` |
//! | `K` | hour 0–11 (with `a`) | as `H` |
//! | `m`, `s` | minute, second | 1–2 digits; 2 |
//! | `S` | fraction of a second | `S`…`SSSSSSSSS`: 1 up to that many digits (Spark 3) |
//! | `a` | `AM`/`PM` | 1 |
//! | `E` | day of week (read and ignored) | `E`–`EEE`: `Mon`; `EEEE`: `Monday` |
//! | `X` | offset, `Z` for zero | `X`: `+01`, `+0130`; `XX`: `+0130`; `XXX`: `+01:30` |
//! | `x` | offset | as `X`, no `Z` |
//! | `Z` | offset | `Z`–`ZZZ`: `+0130`; `ZZZZZ`: `+01:30` or `Z` |
//! | `VV`, `z` | time-zone id (`Europe/Paris`, `UTC`) | |
//! | `'…'` | literal text (`''` is a quote) | |
//! | `[…]` | optional section | |
//!
//! Other letters (`G`, `Q`, `w`, `W`, `e`, `F`, `O`, …) are refused. Any other character
//! is a literal. A numeric field directly followed by another (`yyyyMMdd`, `HHmmss`)
//! takes exactly its letter count of digits, as in Java's adjacent-value parsing.
//! Missing fields default to 1970-01-01 00:00:00 (Spark's defaults).

use crate::event::Timestamp;
use jiff::civil;
use jiff::tz::TimeZone;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A calendar date: days since 1970-01-01 (Spark's `DateType`), proleptic Gregorian.
///
/// In human-readable formats (CSV, JSON) it serializes as `yyyy-MM-dd` and
/// deserializes from that (or from a day count); in binary ones (checkpoints) as the
/// day count.
///
/// ```
/// use rivulet::format::date::Date;
///
/// let date: Date = "2014-03-10".parse()?;
/// assert_eq!((date.year(), date.month(), date.day()), (2014, 3, 10));
/// assert_eq!(date.days_since_epoch(), 16139);
/// assert_eq!(Date::from_days(16139).to_string(), "2014-03-10");
/// # Ok::<(), rivulet::format::date::ParseError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Date(pub i32);

const EPOCH: civil::Date = civil::date(1970, 1, 1);

impl Date {
    /// The date `year`-`month`-`day`, if it exists (years -9999 to 9999).
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Date> {
        let date = civil::Date::new(
            i16::try_from(year).ok()?,
            i8::try_from(month).ok()?,
            i8::try_from(day).ok()?,
        )
        .ok()?;
        Some(Date::from_civil(date))
    }

    /// The date `days` days after 1970-01-01 (before, if negative).
    pub fn from_days(days: i32) -> Date {
        Date(days)
    }

    /// Days since 1970-01-01.
    pub fn days_since_epoch(self) -> i32 {
        self.0
    }

    /// From `jiff`'s civil date.
    pub fn from_civil(date: civil::Date) -> Date {
        let days = date
            .since((jiff::Unit::Day, EPOCH))
            .map(|span| span.get_days())
            .unwrap_or(0);
        Date(days)
    }

    /// As `jiff`'s civil date (clamped to the years -9999 to 9999).
    pub fn to_civil(self) -> civil::Date {
        EPOCH
            .checked_add(jiff::Span::new().days(self.0.clamp(-4_371_587, 2_932_896)))
            .unwrap_or(if self.0 < 0 {
                civil::Date::MIN
            } else {
                civil::Date::MAX
            })
    }

    /// The year.
    pub fn year(self) -> i32 {
        i32::from(self.to_civil().year())
    }

    /// The month, 1–12.
    pub fn month(self) -> u32 {
        self.to_civil().month() as u32
    }

    /// The day of the month, 1–31.
    pub fn day(self) -> u32 {
        self.to_civil().day() as u32
    }

    /// Midnight UTC at the start of this date.
    pub fn to_timestamp(self) -> Timestamp {
        Timestamp(i64::from(self.0) * 86_400_000_000)
    }

    /// The UTC date of `timestamp`.
    pub fn of_timestamp(timestamp: Timestamp) -> Date {
        Date(timestamp.0.div_euclid(86_400_000_000) as i32)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // jiff writes years before 0 and after 9999 in ISO's expanded form (`-000221`).
        fmt::Display::fmt(&self.to_civil(), f)
    }
}

impl FromStr for Date {
    type Err = ParseError;

    /// Parses an ISO date, `yyyy-MM-dd` (a time after it is ignored).
    fn from_str(text: &str) -> Result<Date, ParseError> {
        parse_iso_date(text)
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            serializer.serialize_i32(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Date, D::Error> {
        struct DateVisitor;
        impl serde::de::Visitor<'_> for DateVisitor {
            type Value = Date;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a date (yyyy-MM-dd) or a day count")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Date, E> {
                parse_iso_date(text).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, days: i64) -> Result<Date, E> {
                i32::try_from(days).map(Date).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, days: u64) -> Result<Date, E> {
                i32::try_from(days).map(Date).map_err(E::custom)
            }
        }
        if deserializer.is_human_readable() {
            deserializer.deserialize_str(DateVisitor)
        } else {
            deserializer.deserialize_i32(DateVisitor)
        }
    }
}

/// A pattern that is not one [`DateTimeFormat`] understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid datetime pattern {pattern:?}: {reason}")]
pub struct PatternError {
    /// The pattern.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Text that does not match a pattern or is not a valid date or time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot parse {text:?} as {expected}: {reason}")]
pub struct ParseError {
    /// The text.
    pub text: String,
    /// What it should have been (the pattern, or "an ISO-8601 timestamp").
    pub expected: String,
    /// Why it is not.
    pub reason: String,
}

/// Which number a numeric pattern field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Year,
    TwoDigitYear,
    Month,
    Day,
    DayOfYear,
    Hour,
    /// `k`: 1–24.
    HourFrom1,
    /// `h`: 1–12.
    ClockHour,
    /// `K`: 0–11.
    HourOfHalfDay,
    Minute,
    Second,
}

/// How an offset is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OffsetStyle {
    /// `+HH` or `+HHmm`.
    Short,
    /// `+HHmm`.
    Compact,
    /// `+HH:mm`.
    Colon,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Literal(String),
    Number {
        field: Field,
        min: usize,
        max: usize,
    },
    MonthName {
        full: bool,
    },
    Fraction {
        max: usize,
    },
    AmPm,
    DayName {
        full: bool,
    },
    Offset {
        style: OffsetStyle,
        z_for_zero: bool,
    },
    Zone,
    Optional(Vec<Item>),
}

/// A compiled Spark datetime pattern (see the [module docs](self) for the letters),
/// for parsing and formatting dates and timestamps.
///
/// ```
/// use rivulet::format::date::{Date, DateTimeFormat};
///
/// let sensor = DateTimeFormat::new("M/d/yy")?;
/// assert_eq!(sensor.parse_date("3/10/14")?, Date::from_ymd(2014, 3, 10).unwrap());
/// assert!(sensor.parse_date("13/10/14").is_err());
///
/// let spark = DateTimeFormat::new("yyyy-MM-dd'T'HH:mm:ss[.SSS][XXX]")?;
/// let t = spark.parse_timestamp("2014-03-10T01:01:00.5+01:00")?;
/// assert_eq!(spark.format_timestamp(t), "2014-03-10T00:01:00.500Z");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct DateTimeFormat {
    pattern: String,
    items: Vec<Item>,
    zone: TimeZone,
}

impl DateTimeFormat {
    /// Compiles `pattern`; timestamps without an offset or zone in the text are UTC.
    ///
    /// # Errors
    ///
    /// An unsupported letter or count, an unclosed quote or optional section.
    pub fn new(pattern: &str) -> Result<DateTimeFormat, PatternError> {
        let items = compile(pattern).map_err(|reason| PatternError {
            pattern: pattern.to_string(),
            reason,
        })?;
        Ok(DateTimeFormat {
            pattern: pattern.to_string(),
            items,
            zone: TimeZone::UTC,
        })
    }

    /// Timestamps without an offset or zone in the text are in the IANA zone `zone`
    /// (`Europe/Paris`) instead of UTC. A local time that a daylight-saving change skips
    /// moves forward, one it repeats takes the earlier offset (as Java does).
    ///
    /// # Errors
    ///
    /// The zone is not in the time-zone database.
    pub fn with_zone(mut self, zone: &str) -> Result<DateTimeFormat, PatternError> {
        self.zone = TimeZone::get(zone).map_err(|error| PatternError {
            pattern: self.pattern.clone(),
            reason: format!("unknown time zone {zone:?}: {error}"),
        })?;
        Ok(self)
    }

    /// The pattern.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    fn error(&self, text: &str, reason: impl Into<String>) -> ParseError {
        ParseError {
            text: text.to_string(),
            expected: format!("pattern {:?}", self.pattern),
            reason: reason.into(),
        }
    }

    fn parse_fields(&self, text: &str) -> Result<Parsed, ParseError> {
        let mut parsed = Parsed::default();
        let rest = parse_items(&self.items, text, &mut parsed).map_err(|r| self.error(text, r))?;
        if !rest.is_empty() {
            return Err(self.error(text, format!("unexpected {rest:?} at the end")));
        }
        Ok(parsed)
    }

    /// Parses a date; time fields in the text are checked and then ignored.
    ///
    /// # Errors
    ///
    /// The text does not match the pattern, or names a day that does not exist.
    pub fn parse_date(&self, text: &str) -> Result<Date, ParseError> {
        let parsed = self.parse_fields(text)?;
        parsed
            .date()
            .map(Date::from_civil)
            .map_err(|reason| self.error(text, reason))
    }

    /// Parses a timestamp: in the text's offset or zone, else the format's zone (UTC
    /// unless [`with_zone`](Self::with_zone)).
    ///
    /// # Errors
    ///
    /// The text does not match the pattern, or names a time that does not exist.
    pub fn parse_timestamp(&self, text: &str) -> Result<Timestamp, ParseError> {
        let parsed = self.parse_fields(text)?;
        parsed
            .timestamp(&self.zone)
            .map_err(|reason| self.error(text, reason))
    }

    /// Writes `date` in the pattern (time fields as midnight).
    pub fn format_date(&self, date: Date) -> String {
        let civil = date.to_civil().to_datetime(civil::Time::midnight());
        let mut out = String::new();
        format_items(&self.items, &civil, 0, &mut out);
        out
    }

    /// Writes `timestamp` in the pattern, in the format's zone.
    pub fn format_timestamp(&self, timestamp: Timestamp) -> String {
        let (civil, offset) = match jiff::Timestamp::from_microsecond(timestamp.0) {
            Ok(ts) => {
                let zoned = ts.to_zoned(self.zone.clone());
                (zoned.datetime(), zoned.offset().seconds())
            }
            Err(_) => (civil::DateTime::default(), 0),
        };
        let mut out = String::new();
        format_items(&self.items, &civil, offset, &mut out);
        out
    }
}

/// Fields read from a text.
#[derive(Debug, Default)]
struct Parsed {
    year: Option<i64>,
    month: Option<i64>,
    day: Option<i64>,
    day_of_year: Option<i64>,
    hour: Option<i64>,
    hour_from_1: Option<i64>,
    clock_hour: Option<i64>,
    hour_of_half_day: Option<i64>,
    pm: Option<bool>,
    minute: Option<i64>,
    second: Option<i64>,
    nanos: Option<i64>,
    offset: Option<i32>,
    zone: Option<TimeZone>,
}

impl Parsed {
    fn date(&self) -> Result<civil::Date, String> {
        let year = self.year.unwrap_or(1970);
        let year = i16::try_from(year).map_err(|_| format!("year {year} is out of range"))?;
        if let Some(day_of_year) = self.day_of_year {
            let first = civil::Date::new(year, 1, 1).map_err(|e| e.to_string())?;
            let date = first
                .checked_add(jiff::Span::new().days(day_of_year - 1))
                .map_err(|e| e.to_string())?;
            if day_of_year < 1 || date.year() != year {
                return Err(format!(
                    "day of year {day_of_year} does not exist in {year}"
                ));
            }
            return Ok(date);
        }
        let month = self.month.unwrap_or(1);
        let day = self.day.unwrap_or(1);
        civil::Date::new(year, month as i8, day as i8)
            .map_err(|_| format!("{year:04}-{month:02}-{day:02} is not a date"))
    }

    fn time(&self) -> Result<civil::Time, String> {
        let pm = self.pm;
        let hour = if let Some(hour) = self.hour {
            hour
        } else if let Some(hour) = self.hour_from_1 {
            if !(1..=24).contains(&hour) {
                return Err(format!("hour {hour} is not in 1-24"));
            }
            hour % 24
        } else if let Some(hour) = self.clock_hour {
            if !(1..=12).contains(&hour) {
                return Err(format!("hour {hour} is not in 1-12"));
            }
            hour % 12 + if pm == Some(true) { 12 } else { 0 }
        } else if let Some(hour) = self.hour_of_half_day {
            if !(0..=11).contains(&hour) {
                return Err(format!("hour {hour} is not in 0-11"));
            }
            hour + if pm == Some(true) { 12 } else { 0 }
        } else {
            0
        };
        let minute = self.minute.unwrap_or(0);
        let second = self.second.unwrap_or(0);
        civil::Time::new(
            hour.clamp(-1, 99) as i8,
            minute.clamp(-1, 99) as i8,
            second.clamp(-1, 99) as i8,
            self.nanos.unwrap_or(0) as i32,
        )
        .map_err(|_| format!("{hour:02}:{minute:02}:{second:02} is not a time"))
    }

    fn timestamp(&self, default_zone: &TimeZone) -> Result<Timestamp, String> {
        let datetime = self.date()?.to_datetime(self.time()?);
        let instant = if let Some(offset) = self.offset {
            let offset = jiff::tz::Offset::from_seconds(offset).map_err(|e| e.to_string())?;
            offset.to_timestamp(datetime).map_err(|e| e.to_string())?
        } else {
            let zone = self.zone.as_ref().unwrap_or(default_zone);
            datetime
                .to_zoned(zone.clone())
                .map_err(|e| e.to_string())?
                .timestamp()
        };
        Ok(Timestamp(instant.as_microsecond()))
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Compiles a pattern into items.
fn compile(pattern: &str) -> Result<Vec<Item>, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut stack: Vec<Vec<Item>> = vec![Vec::new()];
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let items = stack.last_mut().expect("the stack is never empty");
        if c == '\'' {
            let mut literal = String::new();
            i += 1;
            if chars.get(i) == Some(&'\'') {
                items.push(Item::Literal("'".into()));
                i += 1;
                continue;
            }
            loop {
                match chars.get(i) {
                    None => return Err("unclosed quote".into()),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        literal.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(&other) => {
                        literal.push(other);
                        i += 1;
                    }
                }
            }
            items.push(Item::Literal(literal));
            continue;
        }
        if c == '[' {
            stack.push(Vec::new());
            i += 1;
            continue;
        }
        if c == ']' {
            if stack.len() == 1 {
                return Err("`]` without `[`".into());
            }
            let group = stack.pop().expect("checked above");
            stack
                .last_mut()
                .expect("the stack is never empty")
                .push(Item::Optional(group));
            i += 1;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            items.push(Item::Literal(c.to_string()));
            i += 1;
            continue;
        }
        let mut count = 1;
        while chars.get(i + count) == Some(&c) {
            count += 1;
        }
        i += count;
        let bad = || format!("`{}` is not supported", c.to_string().repeat(count));
        let number = |field, one_max: usize, full: usize| -> Result<Item, String> {
            match count {
                1 => Ok(Item::Number {
                    field,
                    min: 1,
                    max: one_max,
                }),
                n if n <= full => Ok(Item::Number {
                    field,
                    min: n,
                    max: full,
                }),
                _ => Err(bad()),
            }
        };
        let item = match c {
            'y' | 'u' => match count {
                2 => Item::Number {
                    field: Field::TwoDigitYear,
                    min: 2,
                    max: 2,
                },
                n => Item::Number {
                    field: Field::Year,
                    min: n,
                    max: n.max(9),
                },
            },
            'M' | 'L' => match count {
                1 | 2 => number(Field::Month, 2, 2)?,
                3 => Item::MonthName { full: false },
                4 => Item::MonthName { full: true },
                _ => return Err(bad()),
            },
            'd' => number(Field::Day, 2, 2)?,
            'D' => number(Field::DayOfYear, 3, 3)?,
            'H' => number(Field::Hour, 2, 2)?,
            'k' => number(Field::HourFrom1, 2, 2)?,
            'h' => number(Field::ClockHour, 2, 2)?,
            'K' => number(Field::HourOfHalfDay, 2, 2)?,
            'm' => number(Field::Minute, 2, 2)?,
            's' => number(Field::Second, 2, 2)?,
            'S' if count <= 9 => Item::Fraction { max: count },
            'a' if count == 1 => Item::AmPm,
            'E' if count <= 3 => Item::DayName { full: false },
            'E' if count == 4 => Item::DayName { full: true },
            'X' | 'x' if count <= 3 => Item::Offset {
                style: [OffsetStyle::Short, OffsetStyle::Compact, OffsetStyle::Colon][count - 1],
                z_for_zero: c == 'X',
            },
            'Z' if count <= 3 => Item::Offset {
                style: OffsetStyle::Compact,
                z_for_zero: false,
            },
            'Z' if count == 5 => Item::Offset {
                style: OffsetStyle::Colon,
                z_for_zero: true,
            },
            'V' if count == 2 => Item::Zone,
            'z' if count <= 4 => Item::Zone,
            _ => return Err(bad()),
        };
        items.push(item);
    }
    if stack.len() != 1 {
        return Err("`[` without `]`".into());
    }
    let mut items = stack.pop().expect("one left");
    fix_adjacent(&mut items);
    Ok(items)
}

/// A numeric field directly followed by another numeric field takes exactly its
/// letter count of digits (Java's adjacent value parsing).
fn fix_adjacent(items: &mut [Item]) {
    for i in 0..items.len() {
        let next_numeric = matches!(
            items.get(i + 1),
            Some(Item::Number { .. } | Item::Fraction { .. })
        );
        match &mut items[i] {
            Item::Number { min, max, .. } if next_numeric => *max = *min,
            Item::Optional(inner) => fix_adjacent(inner),
            _ => {}
        }
    }
}

/// Reads `min..=max` ASCII digits from the front of `text`.
fn digits(text: &str, min: usize, max: usize) -> Result<(i64, &str), String> {
    let len = text
        .bytes()
        .take(max)
        .take_while(u8::is_ascii_digit)
        .count();
    if len < min {
        return Err(format!("expected {min} digit(s) at {text:?}"));
    }
    let value = text[..len]
        .parse::<i64>()
        .map_err(|_| format!("number too large at {text:?}"))?;
    Ok((value, &text[len..]))
}

/// Matches one of `names` (or their first three letters) at the front of `text`, in
/// any case. Returns its index.
fn name<'t>(text: &'t str, names: &[&str], full: bool) -> Result<(usize, &'t str), String> {
    for (index, name) in names.iter().enumerate() {
        let name = if full { name } else { &name[..3] };
        if text.len() >= name.len()
            && text.is_char_boundary(name.len())
            && text[..name.len()].eq_ignore_ascii_case(name)
        {
            return Ok((index, &text[name.len()..]));
        }
    }
    Err(format!("expected a name at {text:?}"))
}

fn parse_offset(text: &str, z_for_zero: bool) -> Result<(i32, &str), String> {
    if z_for_zero {
        if let Some(rest) = text.strip_prefix('Z').or_else(|| text.strip_prefix('z')) {
            return Ok((0, rest));
        }
    }
    let sign = match text.as_bytes().first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Err(format!("expected an offset at {text:?}")),
    };
    let (hours, mut rest) = digits(&text[1..], 2, 2)?;
    let mut minutes = 0;
    let after_colon = rest.strip_prefix(':');
    let candidate = after_colon.unwrap_or(rest);
    if let Ok((m, r)) = digits(candidate, 2, 2) {
        minutes = m;
        rest = r;
    }
    if hours > 18 || minutes > 59 {
        return Err(format!("offset out of range at {text:?}"));
    }
    Ok((sign * (hours * 3600 + minutes * 60) as i32, rest))
}

fn parse_zone(text: &str) -> Result<(TimeZone, &str), String> {
    let len = text
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'+' | b'-'))
        .count();
    let id = &text[..len];
    let zone = match id {
        "Z" | "UTC" | "GMT" | "UT" => TimeZone::UTC,
        _ => TimeZone::get(id).map_err(|_| format!("unknown time zone {id:?}"))?,
    };
    Ok((zone, &text[len..]))
}

/// Parses `items` from the front of `text` into `parsed`; returns the rest.
fn parse_items<'t>(
    items: &[Item],
    mut text: &'t str,
    parsed: &mut Parsed,
) -> Result<&'t str, String> {
    for item in items {
        text = match item {
            Item::Literal(literal) => text
                .strip_prefix(literal.as_str())
                .ok_or_else(|| format!("expected {literal:?} at {text:?}"))?,
            Item::Number { field, min, max } => {
                let (value, rest) = digits(text, *min, *max)?;
                let slot = match field {
                    Field::Year => &mut parsed.year,
                    Field::TwoDigitYear => {
                        parsed.year = Some(2000 + value);
                        text = rest;
                        continue;
                    }
                    Field::Month => &mut parsed.month,
                    Field::Day => &mut parsed.day,
                    Field::DayOfYear => &mut parsed.day_of_year,
                    Field::Hour => &mut parsed.hour,
                    Field::HourFrom1 => &mut parsed.hour_from_1,
                    Field::ClockHour => &mut parsed.clock_hour,
                    Field::HourOfHalfDay => &mut parsed.hour_of_half_day,
                    Field::Minute => &mut parsed.minute,
                    Field::Second => &mut parsed.second,
                };
                *slot = Some(value);
                rest
            }
            Item::MonthName { full } => {
                let (index, rest) = name(text, &MONTHS, *full)?;
                parsed.month = Some(index as i64 + 1);
                rest
            }
            Item::Fraction { max } => {
                let (value, rest) = digits(text, 1, *max)?;
                let len = text.len() - rest.len();
                parsed.nanos = Some(value * 10i64.pow(9 - len as u32));
                rest
            }
            Item::AmPm => {
                let upper = text.get(..2).map(str::to_ascii_uppercase);
                match upper.as_deref() {
                    Some("AM") => parsed.pm = Some(false),
                    Some("PM") => parsed.pm = Some(true),
                    _ => return Err(format!("expected AM or PM at {text:?}")),
                }
                &text[2..]
            }
            Item::DayName { full } => name(text, &DAYS, *full)?.1,
            Item::Offset { z_for_zero, .. } => {
                let (offset, rest) = parse_offset(text, *z_for_zero)?;
                parsed.offset = Some(offset);
                rest
            }
            Item::Zone => {
                let (zone, rest) = parse_zone(text)?;
                parsed.zone = Some(zone);
                rest
            }
            Item::Optional(inner) => {
                let mut attempt = Parsed {
                    zone: parsed.zone.clone(),
                    ..Parsed::default()
                };
                match parse_items(inner, text, &mut attempt) {
                    Ok(rest) => {
                        merge(parsed, attempt);
                        rest
                    }
                    Err(_) => text,
                }
            }
        };
    }
    Ok(text)
}

/// Copies the fields `from` found into `into`.
fn merge(into: &mut Parsed, from: Parsed) {
    macro_rules! take {
        ($($field:ident),*) => {
            $(if from.$field.is_some() { into.$field = from.$field; })*
        };
    }
    take!(
        year,
        month,
        day,
        day_of_year,
        hour,
        hour_from_1,
        clock_hour,
        hour_of_half_day,
        pm,
        minute,
        second,
        nanos,
        offset,
        zone
    );
}

fn format_items(items: &[Item], at: &civil::DateTime, offset: i32, out: &mut String) {
    use std::fmt::Write;
    for item in items {
        match item {
            Item::Literal(literal) => out.push_str(literal),
            Item::Number { field, min, .. } => {
                let value: i64 = match field {
                    Field::Year => i64::from(at.year()),
                    Field::TwoDigitYear => i64::from(at.year()).rem_euclid(100),
                    Field::Month => i64::from(at.month()),
                    Field::Day => i64::from(at.day()),
                    Field::DayOfYear => i64::from(at.date().day_of_year()),
                    Field::Hour => i64::from(at.hour()),
                    Field::HourFrom1 => {
                        let h = i64::from(at.hour());
                        if h == 0 {
                            24
                        } else {
                            h
                        }
                    }
                    Field::ClockHour => {
                        let h = i64::from(at.hour()) % 12;
                        if h == 0 {
                            12
                        } else {
                            h
                        }
                    }
                    Field::HourOfHalfDay => i64::from(at.hour()) % 12,
                    Field::Minute => i64::from(at.minute()),
                    Field::Second => i64::from(at.second()),
                };
                let _ = write!(out, "{value:0width$}", width = *min);
            }
            Item::MonthName { full } => {
                let name = MONTHS[(at.month() as usize).saturating_sub(1) % 12];
                out.push_str(if *full { name } else { &name[..3] });
            }
            Item::Fraction { max } => {
                let nanos = at.subsec_nanosecond();
                let digits = format!("{nanos:09}");
                out.push_str(&digits[..*max]);
            }
            Item::AmPm => out.push_str(if at.hour() < 12 { "AM" } else { "PM" }),
            Item::DayName { full } => {
                let index = at.weekday().to_monday_zero_offset() as usize;
                let name = DAYS[index % 7];
                out.push_str(if *full { name } else { &name[..3] });
            }
            Item::Offset { style, z_for_zero } => {
                if offset == 0 && *z_for_zero {
                    out.push('Z');
                } else {
                    let sign = if offset < 0 { '-' } else { '+' };
                    let (h, m) = (offset.abs() / 3600, offset.abs() / 60 % 60);
                    let _ = match style {
                        OffsetStyle::Short if m == 0 => write!(out, "{sign}{h:02}"),
                        OffsetStyle::Short | OffsetStyle::Compact => {
                            write!(out, "{sign}{h:02}{m:02}")
                        }
                        OffsetStyle::Colon => write!(out, "{sign}{h:02}:{m:02}"),
                    };
                }
            }
            Item::Zone => out.push_str(if offset == 0 { "UTC" } else { "" }),
            Item::Optional(inner) => format_items(inner, at, offset, out),
        }
    }
}

/// Parses an ISO date `yyyy-MM-dd` (with `jiff`; a time after it is ignored).
///
/// # Errors
///
/// The text is not an ISO date, or names a day that does not exist.
pub fn parse_iso_date(text: &str) -> Result<Date, ParseError> {
    let trimmed = text.trim();
    let date = trimmed
        .parse::<civil::Date>()
        .or_else(|_| trimmed.parse::<civil::DateTime>().map(|dt| dt.date()))
        .map_err(|error| ParseError {
            text: text.to_string(),
            expected: "an ISO-8601 date (yyyy-MM-dd)".into(),
            reason: error.to_string(),
        })?;
    Ok(Date::from_civil(date))
}

/// Parses an ISO-8601 timestamp with `jiff`: `2014-03-10T01:01:00Z`,
/// `2014-03-10 01:01:00.250+01:00`, `2014-03-10T01:01` (no offset: UTC), or a bare date
/// (midnight UTC). Spark's default `timestampFormat`
/// (`yyyy-MM-dd'T'HH:mm:ss[.SSS][XXX]`) is a subset.
///
/// ```
/// use rivulet::format::date::parse_iso_timestamp;
///
/// let utc = parse_iso_timestamp("2014-03-10T01:01:00Z")?;
/// assert_eq!(parse_iso_timestamp("2014-03-10 02:01:00+01:00")?, utc);
/// assert_eq!(parse_iso_timestamp("2014-03-10T01:01")?, utc);
/// assert_eq!(utc.0, 1_394_413_260_000_000);
/// # Ok::<(), rivulet::format::date::ParseError>(())
/// ```
///
/// # Errors
///
/// The text is not an ISO-8601 date or timestamp.
pub fn parse_iso_timestamp(text: &str) -> Result<Timestamp, ParseError> {
    let trimmed = text.trim();
    let instant = trimmed
        .parse::<jiff::Timestamp>()
        .or_else(|_| {
            trimmed
                .parse::<civil::DateTime>()
                .and_then(|dt| dt.to_zoned(TimeZone::UTC))
                .map(|zoned| zoned.timestamp())
        })
        .map_err(|error| ParseError {
            text: text.to_string(),
            expected: "an ISO-8601 timestamp".into(),
            reason: error.to_string(),
        })?;
    Ok(Timestamp(instant.as_microsecond()))
}

/// Writes `timestamp` as RFC 3339 in UTC with microseconds: `2014-03-10T01:01:00.000250Z`
/// (the fraction only when it is not zero).
pub fn format_iso_timestamp(timestamp: Timestamp) -> String {
    match jiff::Timestamp::from_microsecond(timestamp.0) {
        Ok(ts) => ts.to_string(),
        Err(_) => timestamp.0.to_string(),
    }
}

/// serde `with` module for [`Timestamp`] fields written as ISO-8601 text
/// ([`parse_iso_timestamp`], [`format_iso_timestamp`]); `iso_timestamp::option` for
/// `Option<Timestamp>` (an empty field is `None`).
///
/// ```
/// use rivulet::Timestamp;
///
/// #[derive(serde::Deserialize, serde::Serialize)]
/// struct Event {
///     #[serde(with = "rivulet::format::date::iso_timestamp")]
///     at: Timestamp,
///     #[serde(with = "rivulet::format::date::iso_timestamp::option", default)]
///     ended: Option<Timestamp>,
/// }
///
/// let event: Event = serde_json::from_str(r#"{"at": "2014-03-10T01:01:00Z"}"#)?;
/// assert_eq!(event.at.0, 1_394_413_260_000_000);
/// assert_eq!(serde_json::to_string(&event)?, r#"{"at":"2014-03-10T01:01:00Z","ended":null}"#);
/// # Ok::<(), serde_json::Error>(())
/// ```
pub mod iso_timestamp {
    use super::*;

    /// Writes the timestamp as RFC 3339 text (UTC).
    ///
    /// # Errors
    ///
    /// As the serializer's.
    pub fn serialize<S: Serializer>(value: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_iso_timestamp(*value))
    }

    /// Reads an ISO-8601 timestamp.
    ///
    /// # Errors
    ///
    /// The text is not one.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        parse_iso_timestamp(&text).map_err(serde::de::Error::custom)
    }

    /// The same for `Option<Timestamp>`: an empty or null field is `None`.
    pub mod option {
        use super::*;

        /// Writes the timestamp, or nothing.
        ///
        /// # Errors
        ///
        /// As the serializer's.
        pub fn serialize<S: Serializer>(
            value: &Option<Timestamp>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match value {
                Some(value) => serializer.serialize_some(&format_iso_timestamp(*value)),
                None => serializer.serialize_none(),
            }
        }

        /// Reads an ISO-8601 timestamp, or `None` for an empty or null field.
        ///
        /// # Errors
        ///
        /// The text is not one.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Timestamp>, D::Error> {
            match Option::<std::borrow::Cow<'de, str>>::deserialize(deserializer)? {
                None => Ok(None),
                Some(text) if text.is_empty() => Ok(None),
                Some(text) => parse_iso_timestamp(&text)
                    .map(Some)
                    .map_err(serde::de::Error::custom),
            }
        }
    }
}

/// What the [`date_format!`](crate::date_format) and
/// [`timestamp_format!`](crate::timestamp_format) modules call.
#[doc(hidden)]
pub mod __macro_support {
    use super::*;
    pub use serde::{Deserializer, Serializer};
    pub use std::sync::OnceLock;

    /// Compiles a pattern once per module.
    pub fn compile(
        cell: &'static OnceLock<Result<DateTimeFormat, PatternError>>,
        pattern: &str,
        zone: Option<&str>,
    ) -> &'static Result<DateTimeFormat, PatternError> {
        cell.get_or_init(|| {
            let format = DateTimeFormat::new(pattern)?;
            match zone {
                Some(zone) => format.with_zone(zone),
                None => Ok(format),
            }
        })
    }

    fn text<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<std::borrow::Cow<'de, str>>, D::Error> {
        Ok(Option::<std::borrow::Cow<'de, str>>::deserialize(d)?.filter(|t| !t.is_empty()))
    }

    fn format<E: serde::de::Error>(
        format: &Result<DateTimeFormat, PatternError>,
    ) -> Result<&DateTimeFormat, E> {
        format.as_ref().map_err(E::custom)
    }

    pub fn de_date<'de, D: Deserializer<'de>>(
        f: &Result<DateTimeFormat, PatternError>,
        d: D,
    ) -> Result<Date, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        format(f)?
            .parse_date(&text)
            .map_err(serde::de::Error::custom)
    }

    pub fn de_date_option<'de, D: Deserializer<'de>>(
        f: &Result<DateTimeFormat, PatternError>,
        d: D,
    ) -> Result<Option<Date>, D::Error> {
        match text(d)? {
            None => Ok(None),
            Some(text) => format(f)?
                .parse_date(&text)
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }

    pub fn de_timestamp<'de, D: Deserializer<'de>>(
        f: &Result<DateTimeFormat, PatternError>,
        d: D,
    ) -> Result<Timestamp, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        format(f)?
            .parse_timestamp(&text)
            .map_err(serde::de::Error::custom)
    }

    pub fn de_timestamp_option<'de, D: Deserializer<'de>>(
        f: &Result<DateTimeFormat, PatternError>,
        d: D,
    ) -> Result<Option<Timestamp>, D::Error> {
        match text(d)? {
            None => Ok(None),
            Some(text) => format(f)?
                .parse_timestamp(&text)
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }

    fn ser_format<S: Serializer>(
        f: &Result<DateTimeFormat, PatternError>,
    ) -> Result<&DateTimeFormat, S::Error> {
        f.as_ref().map_err(serde::ser::Error::custom)
    }

    pub fn ser_date<S: Serializer>(
        f: &Result<DateTimeFormat, PatternError>,
        value: &Date,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let text = ser_format::<S>(f)?.format_date(*value);
        s.serialize_str(&text)
    }

    pub fn ser_date_option<S: Serializer>(
        f: &Result<DateTimeFormat, PatternError>,
        value: &Option<Date>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => s.serialize_some(&ser_format::<S>(f)?.format_date(*value)),
            None => s.serialize_none(),
        }
    }

    pub fn ser_timestamp<S: Serializer>(
        f: &Result<DateTimeFormat, PatternError>,
        value: &Timestamp,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let text = ser_format::<S>(f)?.format_timestamp(*value);
        s.serialize_str(&text)
    }

    pub fn ser_timestamp_option<S: Serializer>(
        f: &Result<DateTimeFormat, PatternError>,
        value: &Option<Timestamp>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => s.serialize_some(&ser_format::<S>(f)?.format_timestamp(*value)),
            None => s.serialize_none(),
        }
    }
}

/// Makes a serde `with` module for [`Date`](crate::format::date::Date) fields written
/// in a Spark datetime pattern (see [`format::date`](crate::format::date) for the
/// letters); its `option` submodule is for `Option<Date>` (an empty field is `None`).
/// The pattern is compiled once, at first use; a bad pattern makes every field using
/// it fail to deserialize, naming the pattern (test your types).
///
/// ```
/// use rivulet::format::date::Date;
///
/// rivulet::date_format!(pub mod us_date = "M/d/yy");
///
/// #[derive(serde::Deserialize)]
/// struct Row {
///     #[serde(with = "us_date")]
///     day: Date,
///     #[serde(with = "us_date::option")]
///     repaired: Option<Date>,
/// }
///
/// let row: Row = serde_json::from_str(r#"{"day": "3/9/14", "repaired": ""}"#)?;
/// assert_eq!(row.day.to_string(), "2014-03-09");
/// assert_eq!(row.repaired, None);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[macro_export]
macro_rules! date_format {
    ($vis:vis mod $name:ident = $pattern:literal) => {
        $vis mod $name {
            #![allow(missing_docs, unreachable_pub)]
            use $crate::format::date::__macro_support as support;
            use $crate::format::date::{Date, DateTimeFormat, PatternError};

            pub fn format() -> &'static ::std::result::Result<DateTimeFormat, PatternError> {
                static FORMAT: support::OnceLock<::std::result::Result<DateTimeFormat, PatternError>> =
                    support::OnceLock::new();
                support::compile(&FORMAT, $pattern, None)
            }

            pub fn deserialize<'de, D: support::Deserializer<'de>>(
                d: D,
            ) -> ::std::result::Result<Date, D::Error> {
                support::de_date(format(), d)
            }

            pub fn serialize<S: support::Serializer>(
                value: &Date,
                s: S,
            ) -> ::std::result::Result<S::Ok, S::Error> {
                support::ser_date(format(), value, s)
            }

            pub mod option {
                use super::support;
                use $crate::format::date::Date;

                pub fn deserialize<'de, D: support::Deserializer<'de>>(
                    d: D,
                ) -> ::std::result::Result<Option<Date>, D::Error> {
                    support::de_date_option(super::format(), d)
                }

                pub fn serialize<S: support::Serializer>(
                    value: &Option<Date>,
                    s: S,
                ) -> ::std::result::Result<S::Ok, S::Error> {
                    support::ser_date_option(super::format(), value, s)
                }
            }
        }
    };
}

/// Makes a serde `with` module for [`Timestamp`](crate::Timestamp) fields written in a
/// Spark datetime pattern (see [`format::date`](crate::format::date) for the letters),
/// in UTC or in the IANA zone given with `zone = "…"` when the text has no offset or
/// zone of its own; its `option` submodule is for `Option<Timestamp>`.
///
/// ```
/// rivulet::timestamp_format!(mod paris = "yyyy-MM-dd HH:mm", zone = "Europe/Paris");
/// rivulet::timestamp_format!(mod clock = "h:mm a");
///
/// #[derive(serde::Deserialize)]
/// struct Row {
///     #[serde(with = "paris")]
///     at: rivulet::Timestamp,
///     #[serde(with = "clock")]
///     time: rivulet::Timestamp,
/// }
///
/// let row: Row = serde_json::from_str(r#"{"at": "2014-03-10 02:01", "time": "1:30 PM"}"#)?;
/// assert_eq!(row.at.0, 1_394_413_260_000_000); // 01:01 UTC
/// assert_eq!(row.time.0, (13 * 3600 + 30 * 60) * 1_000_000);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[macro_export]
macro_rules! timestamp_format {
    ($vis:vis mod $name:ident = $pattern:literal $(, zone = $zone:literal)?) => {
        $vis mod $name {
            #![allow(missing_docs, unreachable_pub)]
            use $crate::format::date::__macro_support as support;
            use $crate::format::date::{DateTimeFormat, PatternError};
            use $crate::Timestamp;

            pub fn format() -> &'static ::std::result::Result<DateTimeFormat, PatternError> {
                static FORMAT: support::OnceLock<::std::result::Result<DateTimeFormat, PatternError>> =
                    support::OnceLock::new();
                #[allow(unused_mut, unused_assignments)]
                let mut zone: Option<&str> = None;
                $(zone = Some($zone);)?
                support::compile(&FORMAT, $pattern, zone)
            }

            pub fn deserialize<'de, D: support::Deserializer<'de>>(
                d: D,
            ) -> ::std::result::Result<Timestamp, D::Error> {
                support::de_timestamp(format(), d)
            }

            pub fn serialize<S: support::Serializer>(
                value: &Timestamp,
                s: S,
            ) -> ::std::result::Result<S::Ok, S::Error> {
                support::ser_timestamp(format(), value, s)
            }

            pub mod option {
                use super::support;
                use $crate::Timestamp;

                pub fn deserialize<'de, D: support::Deserializer<'de>>(
                    d: D,
                ) -> ::std::result::Result<Option<Timestamp>, D::Error> {
                    support::de_timestamp_option(super::format(), d)
                }

                pub fn serialize<S: support::Serializer>(
                    value: &Option<Timestamp>,
                    s: S,
                ) -> ::std::result::Result<S::Ok, S::Error> {
                    support::ser_timestamp_option(super::format(), value, s)
                }
            }
        }
    };
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        parse_iso_timestamp(text).unwrap()
    }

    #[test]
    fn dates_round_trip_through_days() {
        for days in [-800_000, -1, 0, 1, 16_139, 2_932_000] {
            let date = Date::from_days(days);
            assert_eq!(Date::from_civil(date.to_civil()), date);
            assert_eq!(date.to_string().parse::<Date>().unwrap(), date);
        }
        assert_eq!(
            Date::from_ymd(2024, 2, 29).unwrap().to_string(),
            "2024-02-29"
        );
        assert!(Date::from_ymd(2023, 2, 29).is_none());
        assert_eq!(Date::of_timestamp(Timestamp(-1)), Date(-1));
    }

    #[test]
    fn sensor_patterns() {
        let date = DateTimeFormat::new("M/d/yy").unwrap();
        assert_eq!(
            date.parse_date("3/10/14").unwrap(),
            Date::from_ymd(2014, 3, 10).unwrap()
        );
        assert_eq!(
            date.parse_date("12/1/99").unwrap(),
            Date::from_ymd(2099, 12, 1).unwrap()
        );
        assert_eq!(
            date.format_date(Date::from_ymd(2014, 3, 1).unwrap()),
            "3/1/14"
        );
        for bad in ["3/10/2014", "2/30/14", "3-10-14", "3/10/14 ", "", "13/1/14"] {
            assert!(date.parse_date(bad).is_err(), "{bad:?}");
        }
        let time = DateTimeFormat::new("H:mm").unwrap();
        assert_eq!(time.parse_timestamp("1:01").unwrap().0, 61 * 60 * 1_000_000);
        assert_eq!(
            time.parse_timestamp("23:59").unwrap().0,
            (23 * 60 + 59) * 60 * 1_000_000
        );
        assert!(time.parse_timestamp("24:00").is_err());
        assert!(time.parse_timestamp("1:1").is_err());
    }

    #[test]
    fn spark_default_timestamp_pattern() {
        let format = DateTimeFormat::new("yyyy-MM-dd'T'HH:mm:ss[.SSS][XXX]").unwrap();
        assert_eq!(
            format.parse_timestamp("2014-03-10T01:01:00").unwrap(),
            ts("2014-03-10T01:01:00Z")
        );
        assert_eq!(
            format.parse_timestamp("2014-03-10T01:01:00.25Z").unwrap(),
            ts("2014-03-10T01:01:00.250Z")
        );
        assert_eq!(
            format.parse_timestamp("2014-03-10T02:01:00-01:30").unwrap(),
            ts("2014-03-10T03:31:00Z")
        );
        assert!(format.parse_timestamp("2014-03-10 01:01:00").is_err());
    }

    #[test]
    fn names_offsets_zones_and_adjacent_fields() {
        let format = DateTimeFormat::new("EEE, dd MMM yyyy hh:mm a Z").unwrap();
        assert_eq!(
            format
                .parse_timestamp("Mon, 10 mar 2014 01:01 pm +0100")
                .unwrap(),
            ts("2014-03-10T12:01:00Z")
        );
        let compact = DateTimeFormat::new("yyyyMMddHHmmss").unwrap();
        assert_eq!(
            compact.parse_timestamp("20140310010100").unwrap(),
            ts("2014-03-10T01:01:00Z")
        );
        let zoned = DateTimeFormat::new("yyyy-MM-dd HH:mm VV").unwrap();
        assert_eq!(
            zoned
                .parse_timestamp("2014-07-01 12:00 Europe/Paris")
                .unwrap(),
            ts("2014-07-01T10:00:00Z")
        );
        let local = DateTimeFormat::new("yyyy-MM-dd HH:mm")
            .unwrap()
            .with_zone("America/New_York")
            .unwrap();
        assert_eq!(
            local.parse_timestamp("2014-01-01 00:00").unwrap(),
            ts("2014-01-01T05:00:00Z")
        );
        // Skipped by the spring change: moves forward.
        assert_eq!(
            local.parse_timestamp("2014-03-09 02:30").unwrap(),
            ts("2014-03-09T07:30:00Z")
        );
        let doy = DateTimeFormat::new("yyyy-DDD").unwrap();
        assert_eq!(
            doy.parse_date("2024-060").unwrap(),
            Date::from_ymd(2024, 2, 29).unwrap()
        );
        assert!(doy.parse_date("2023-366").is_err());
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in [
            "yyyy-MM-dd'T",
            "[yyyy",
            "yyyy]",
            "GGGG",
            "MMMMM",
            "ddd",
            "Q",
        ] {
            assert!(DateTimeFormat::new(bad).is_err(), "{bad:?}");
        }
        assert!(DateTimeFormat::new("yyyy")
            .unwrap()
            .with_zone("Mars/Olympus")
            .is_err());
    }

    #[test]
    fn format_then_parse_is_identity() {
        let patterns = [
            "yyyy-MM-dd HH:mm:ss.SSSSSS",
            "M/d/yy h:mm:ss a",
            "dd MMMM yyyy HH:mm:ss.SSS XXX",
            "yyyyMMddHHmmss",
        ];
        let mut x: u64 = 0x1234_5678;
        for pattern in patterns {
            let format = DateTimeFormat::new(pattern).unwrap();
            for _ in 0..500 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // 2000-01-01 .. 2099-12-31, whole microseconds.
                let micros = 946_684_800_000_000 + (x % 3_155_760_000_000_000) as i64;
                let precision = if pattern.contains("SSSSSS") {
                    1
                } else if pattern.contains("SSS") {
                    1_000
                } else {
                    1_000_000
                };
                let t = Timestamp(micros - micros % precision);
                let text = format.format_timestamp(t);
                assert_eq!(
                    format.parse_timestamp(&text).unwrap(),
                    t,
                    "{pattern}: {text}"
                );
            }
        }
    }
}
