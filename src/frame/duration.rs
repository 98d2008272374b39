//! Spark's interval strings, as `withWatermark` and `window` take them.

use super::FrameError;
use std::time::Duration;

/// Reads an interval as Spark writes them for `withWatermark` and `window`: one or
/// more `<number> <unit>` pairs (`"1 hour"`, `"30 minutes"`, `"1 hour 30 minutes"`),
/// optionally after the word `interval`. Units: `microsecond`, `millisecond`,
/// `second`, `minute`, `hour`, `day`, `week`, singular or plural, any case.
///
/// ```
/// use rivulet::frame::parse_duration;
/// use std::time::Duration;
///
/// assert_eq!(parse_duration("1 hour")?, Duration::from_secs(3600));
/// assert_eq!(parse_duration("INTERVAL 1 hour 30 minutes")?, Duration::from_secs(5400));
/// assert!(parse_duration("1 fortnight").is_err());
/// # Ok::<(), rivulet::frame::FrameError>(())
/// ```
///
/// # Errors
///
/// Anything else (months and years have no fixed length, so they are refused, as
/// Spark refuses them for windows).
pub fn parse_duration(text: &str) -> Result<Duration, FrameError> {
    let bad = |why: &str| FrameError::Invalid(format!("interval `{text}`: {why}"));
    let mut words = text.split_whitespace().peekable();
    if words
        .peek()
        .is_some_and(|w| w.eq_ignore_ascii_case("interval"))
    {
        words.next();
    }
    let mut total = Duration::ZERO;
    let mut any = false;
    while let Some(number) = words.next() {
        let n: u64 = number
            .parse()
            .map_err(|_| bad("expected a whole number of units, like `30 minutes`"))?;
        let unit = words.next().ok_or_else(|| bad("a number without a unit"))?;
        let unit = unit.to_ascii_lowercase();
        let unit = unit.strip_suffix('s').unwrap_or(&unit);
        let micros: u64 = match unit {
            "microsecond" => 1,
            "millisecond" => 1_000,
            "second" => 1_000_000,
            "minute" => 60_000_000,
            "hour" => 3_600_000_000,
            "day" => 86_400_000_000,
            "week" => 604_800_000_000,
            other => return Err(bad(&format!("unknown unit `{other}`"))),
        };
        let part = n.checked_mul(micros).ok_or_else(|| bad("too long"))?;
        total = total
            .checked_add(Duration::from_micros(part))
            .ok_or_else(|| bad("too long"))?;
        any = true;
    }
    if !any {
        return Err(bad("empty"));
    }
    Ok(total)
}
