//! One config value, parsed the way Kafka's `ConfigDef` parses it, so that a value copied from a Kafka config
//! means the same here: surrounding whitespace is ignored, numbers are decimal, booleans are `true`/`false` in any
//! case, and enumerations are case-sensitive.

use std::num::IntErrorKind;

/// Kafka `ConfigType` codes reported by DescribeConfigs v3+.
pub(super) mod config_type {
    pub const BOOLEAN: i8 = 1;
    pub const STRING: i8 = 2;
    pub const INT: i8 = 3;
    pub const LONG: i8 = 5;
    pub const DOUBLE: i8 = 6;
    pub const LIST: i8 = 7;
}

/// The type of a setting with its accepted range: decides both validation and the DescribeConfigs type code.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Kind {
    /// Kafka INT: a 32-bit integer of at least `min`.
    Int { min: i64 },
    /// Kafka LONG: a 64-bit integer of at least `min`.
    Long { min: i64 },
    /// Kafka BOOLEAN.
    Bool,
    /// Kafka DOUBLE between 0 and 1 inclusive.
    Ratio,
    /// Kafka STRING restricted to these words.
    Choice(&'static [&'static str]),
    /// Kafka LIST: one or more of these words, comma-separated.
    List(&'static [&'static str]),
    /// Kafka STRING checked elsewhere (addresses, paths).
    Text,
}

impl Kind {
    pub(super) fn config_type(self) -> i8 {
        match self {
            Kind::Int { .. } => config_type::INT,
            Kind::Long { .. } => config_type::LONG,
            Kind::Bool => config_type::BOOLEAN,
            Kind::Ratio => config_type::DOUBLE,
            Kind::Choice(_) | Kind::Text => config_type::STRING,
            Kind::List(_) => config_type::LIST,
        }
    }

    /// Checks `text` and renders it the way Kafka reports it back, so stored and described values are canonical.
    /// The error is a reason meant for the user.
    pub(super) fn normalize(self, text: &str) -> Result<String, String> {
        let text = text.trim();
        match self {
            Kind::Int { min } => {
                parse_integer(text, min, i64::from(i32::MAX)).map(|v| v.to_string())
            }
            Kind::Long { min } => parse_integer(text, min, i64::MAX).map(|v| v.to_string()),
            Kind::Bool => parse_bool(text).map(|v| v.to_string()),
            Kind::Ratio => parse_ratio(text).map(|v| format!("{v:?}")),
            Kind::Choice(words) => choose(text, words).map(str::to_string),
            Kind::List(words) => parse_list(text, words).map(|items| items.join(",")),
            Kind::Text => Ok(text.to_string()),
        }
    }
}

/// A decimal integer in `min..=max`.
pub(super) fn parse_integer(text: &str, min: i64, max: i64) -> Result<i64, String> {
    let value: i64 = text
        .trim()
        .parse()
        .map_err(|e: std::num::ParseIntError| match e.kind() {
            IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => "out of range".to_string(),
            _ => "not an integer".to_string(),
        })?;
    if value < min {
        return Err(format!("must be at least {min}"));
    }
    if value > max {
        return Err(format!("must be at most {max}"));
    }
    Ok(value)
}

/// `true` or `false`, any case, as Java's `ConfigDef` accepts.
pub(super) fn parse_bool(text: &str) -> Result<bool, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if text.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err("must be true or false".to_string())
    }
}

/// A number between 0 and 1; NaN is rejected because it fails the range check.
pub(super) fn parse_ratio(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| "not a number".to_string())?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err("must be between 0 and 1".to_string())
    }
}

fn choose<'w>(text: &str, words: &[&'w str]) -> Result<&'w str, String> {
    words
        .iter()
        .find(|word| **word == text)
        .copied()
        .ok_or_else(|| format!("must be one of: {}", words.join(", ")))
}

/// Comma-separated words from `words`, duplicates dropped, first-seen order kept.
fn parse_list(text: &str, words: &[&'static str]) -> Result<Vec<&'static str>, String> {
    let mut items = Vec::new();
    for item in text.split(',').map(str::trim) {
        let word = choose(item, words)
            .map_err(|_| format!("`{item}` is not one of: {}", words.join(", ")))?;
        if !items.contains(&word) {
            items.push(word);
        }
    }
    Ok(items)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn integers_follow_kafka_ranges() {
        let int = Kind::Int { min: 1 };
        assert_eq!(int.normalize(" 42 ").unwrap(), "42");
        assert_eq!(int.normalize("+7").unwrap(), "7");
        assert!(int.normalize("0").unwrap_err().contains("at least 1"));
        assert!(int.normalize("2147483648").unwrap_err().contains("at most"));
        assert!(int.normalize("1.5").unwrap_err().contains("not an integer"));
        let long = Kind::Long { min: -1 };
        assert_eq!(
            long.normalize("9223372036854775807").unwrap(),
            i64::MAX.to_string()
        );
        assert!(long
            .normalize("9223372036854775808")
            .unwrap_err()
            .contains("out of range"));
    }

    #[test]
    fn booleans_ratios_and_words() {
        assert_eq!(Kind::Bool.normalize("TRUE").unwrap(), "true");
        assert!(Kind::Bool.normalize("yes").is_err());
        assert_eq!(Kind::Ratio.normalize("0.5").unwrap(), "0.5");
        assert_eq!(Kind::Ratio.normalize("1").unwrap(), "1.0");
        assert!(Kind::Ratio.normalize("NaN").is_err());
        assert!(Kind::Ratio.normalize("1.01").is_err());
        let choice = Kind::Choice(&["CreateTime", "LogAppendTime"]);
        assert!(
            choice.normalize("createtime").is_err(),
            "case-sensitive like Kafka"
        );
        let list = Kind::List(&["compact", "delete"]);
        assert_eq!(
            list.normalize("compact, delete,compact").unwrap(),
            "compact,delete"
        );
        assert!(list.normalize("").is_err());
        assert!(list.normalize("compact,").is_err());
    }

    proptest! {
        #[test]
        fn normalizing_is_idempotent(n in any::<i64>(), pad in "[ \t]{0,2}") {
            let kind = Kind::Long { min: i64::MIN };
            let once = kind.normalize(&format!("{pad}{n}{pad}")).unwrap();
            prop_assert_eq!(kind.normalize(&once).unwrap(), once.clone());
            prop_assert_eq!(once, n.to_string());
        }
    }
}
