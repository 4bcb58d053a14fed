//! Go-style durations (`90s`, `15m`, `24h`, `1h30m`), as Kubernetes users write them.
//!
//! Token lifetimes travel to providers as whole seconds, so a lifetime is kept as
//! seconds and anything finer than a second is refused rather than rounded.

use std::fmt;
use std::str::FromStr;

/// The pattern the CRD schema uses, so the API server refuses junk before we see it.
pub const GO_DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$";

/// A token lifetime: a positive whole number of seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lifetime(u64);

/// Why a duration string was refused. The message never repeats the field name;
/// callers put the field in front.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("is empty; write a duration such as \"15m\", \"1h30m\" or \"90s\"")]
    Empty,
    #[error(
        "{0:?} is not a duration: expected numbers with units h, m, s, ms, us or ns, such as \"15m\" or \"1h30m\""
    )]
    Syntax(String),
    #[error("{0:?} has unknown unit {1:?}: use h, m, s, ms, us or ns")]
    UnknownUnit(String, String),
    #[error("{0:?} must be longer than zero")]
    NotPositive(String),
    #[error("{0:?} is not a whole number of seconds (token lifetimes are sent in seconds)")]
    SubSecond(String),
    #[error("{0:?} is too long")]
    Overflow(String),
}

impl Lifetime {
    pub const fn from_secs(seconds: u64) -> Self {
        Self(seconds)
    }

    pub const fn as_secs(self) -> u64 {
        self.0
    }
}

impl FromStr for Lifetime {
    type Err = DurationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let nanos = parse_go_duration_nanos(text)?;
        if nanos == 0 {
            return Err(DurationError::NotPositive(text.to_owned()));
        }
        if nanos % NANOS_PER_SECOND != 0 {
            return Err(DurationError::SubSecond(text.to_owned()));
        }
        u64::try_from(nanos / NANOS_PER_SECOND)
            .map(Lifetime)
            .map_err(|_| DurationError::Overflow(text.to_owned()))
    }
}

/// Canonical Go-style text: the largest units first, zero parts left out (`5400s` → `1h30m`).
impl fmt::Display for Lifetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (hours, minutes, seconds) = (self.0 / 3600, self.0 / 60 % 60, self.0 % 60);
        if hours > 0 {
            write!(f, "{hours}h")?;
        }
        if minutes > 0 {
            write!(f, "{minutes}m")?;
        }
        if seconds > 0 || self.0 == 0 {
            write!(f, "{seconds}s")?;
        }
        Ok(())
    }
}

// In status and JSON a lifetime is its canonical Go-style text, as users wrote it.
impl serde::Serialize for Lifetime {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Lifetime {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for Lifetime {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Lifetime".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "pattern": GO_DURATION_PATTERN })
    }

    fn inline_schema() -> bool {
        true
    }
}

const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// Parses Go's `time.ParseDuration` grammar (without a sign) into nanoseconds.
fn parse_go_duration_nanos(text: &str) -> Result<u128, DurationError> {
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    let syntax = || DurationError::Syntax(text.to_owned());
    let overflow = || DurationError::Overflow(text.to_owned());
    let mut rest = text;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(syntax)?;
        let (number, after_number) = rest.split_at(number_len);
        if number.is_empty() {
            return Err(syntax());
        }
        let unit_len = after_number
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after_number.len());
        let (unit, after_unit) = after_number.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => NANOS_PER_SECOND,
            "m" => 60 * NANOS_PER_SECOND,
            "h" => 3600 * NANOS_PER_SECOND,
            "" => return Err(syntax()),
            other => {
                return Err(DurationError::UnknownUnit(
                    text.to_owned(),
                    other.to_owned(),
                ));
            }
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if fraction.contains('.') || number == "." {
            return Err(syntax());
        }
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| overflow())?
        };
        let mut part = whole.checked_mul(unit_nanos).ok_or_else(overflow)?;
        // Digits beyond nanosecond precision cannot matter; ignore them as Go does.
        let mut scale = unit_nanos;
        for digit in fraction.chars() {
            scale /= 10;
            part += u128::from(digit.to_digit(10).ok_or_else(syntax)?) * scale;
        }
        total = total.checked_add(part).ok_or_else(overflow)?;
        rest = after_unit;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(text: &str) -> Result<u64, DurationError> {
        text.parse::<Lifetime>().map(Lifetime::as_secs)
    }

    #[test]
    fn parses_the_forms_users_write() {
        assert_eq!(secs("90s"), Ok(90));
        assert_eq!(secs("15m"), Ok(900));
        assert_eq!(secs("24h"), Ok(86_400));
        assert_eq!(secs("1h30m"), Ok(5_400));
        assert_eq!(secs("1.5h"), Ok(5_400));
        assert_eq!(secs("1m30s"), Ok(90));
        assert_eq!(
            secs("1500ms"),
            Err(DurationError::SubSecond("1500ms".into()))
        );
        assert_eq!(secs("2000ms"), Ok(2));
        assert_eq!(secs("3000000us"), Ok(3));
        assert_eq!(secs(".5m"), Ok(30));
    }

    #[test]
    fn refuses_bad_text_with_a_reason() {
        assert_eq!(secs(""), Err(DurationError::Empty));
        assert_eq!(secs("15"), Err(DurationError::Syntax("15".into())));
        assert_eq!(secs("m"), Err(DurationError::Syntax("m".into())));
        assert_eq!(
            secs("15 m"),
            Err(DurationError::UnknownUnit("15 m".into(), " m".into()))
        );
        assert_eq!(
            secs("1d"),
            Err(DurationError::UnknownUnit("1d".into(), "d".into()))
        );
        assert_eq!(secs("-5m"), Err(DurationError::Syntax("-5m".into())));
        assert_eq!(secs("1.2.3s"), Err(DurationError::Syntax("1.2.3s".into())));
        assert_eq!(secs("0s"), Err(DurationError::NotPositive("0s".into())));
        assert_eq!(
            secs("99999999999999999999999999999999999999999h"),
            Err(DurationError::Overflow(
                "99999999999999999999999999999999999999999h".into()
            ))
        );
    }

    #[test]
    fn messages_say_what_to_write() {
        let message = secs("1d").unwrap_err().to_string();
        assert_eq!(
            message,
            "\"1d\" has unknown unit \"d\": use h, m, s, ms, us or ns"
        );
        let message = secs("soon").unwrap_err().to_string();
        assert!(
            message.starts_with("\"soon\" is not a duration"),
            "{message}"
        );
    }

    #[test]
    fn displays_canonically() {
        for (text, shown) in [
            ("5400s", "1h30m"),
            ("24h", "24h"),
            ("90s", "1m30s"),
            ("5m", "5m"),
            ("3601s", "1h1s"),
        ] {
            assert_eq!(text.parse::<Lifetime>().unwrap().to_string(), shown);
        }
    }

    proptest::proptest! {
        #[test]
        fn display_round_trips(seconds in 1u64..10_000_000) {
            let shown = Lifetime::from_secs(seconds).to_string();
            proptest::prop_assert_eq!(shown.parse::<Lifetime>().unwrap().as_secs(), seconds);
        }

        #[test]
        fn never_panics(text in "\\PC{0,24}") {
            let _ = text.parse::<Lifetime>();
        }
    }
}
