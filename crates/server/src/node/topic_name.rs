//! Kafka's rules for topic names (`Topic.validate`): 1 to 249 characters of ASCII letters, digits, `.`, `_`,
//! `-`, and not `.` or `..`.

pub const MAX_NAME_LENGTH: usize = 249;

pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("topic name is empty".into());
    }
    if name == "." || name == ".." {
        return Err(format!("topic name cannot be \"{name}\""));
    }
    if name.len() > MAX_NAME_LENGTH {
        return Err(format!(
            "topic name is longer than {MAX_NAME_LENGTH} characters"
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "topic name {name:?} contains the illegal character {bad:?}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_rules() {
        for ok in ["a", "orders", "my.topic_1-x", &"x".repeat(249)] {
            assert!(validate_topic_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "with space",
            "slash/x",
            "ü",
            &"x".repeat(250),
        ] {
            assert!(validate_topic_name(bad).is_err(), "{bad}");
        }
    }
}
