//! Raw settings from the three places an operator can put them, merged so that a later layer replaces an
//! earlier one: TOML file < `FERRITE_*` environment < `--override` flags. Nothing here knows which names exist;
//! [`super::broker`] checks names and values, so every layer gets the same checks and error messages.

use std::collections::BTreeMap;
use std::path::Path;

use super::error::{ConfigError, ConfigSource};

/// Only environment variables with this prefix are settings.
pub const ENV_PREFIX: &str = "FERRITE_";

/// `FERRITE_*` variables that are not broker settings: `FERRITE_CONFIG` is the config file's path and
/// `FERRITE_LOG` the tracing filter, both read by `main`.
pub const IGNORED_ENV_VARS: &[&str] = &["FERRITE_CONFIG", "FERRITE_LOG"];

/// One raw value and the layer it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Setting {
    pub value: String,
    pub source: ConfigSource,
}

/// Kafka setting name -> its raw value.
pub(super) type Settings = BTreeMap<String, Setting>;

/// All three layers merged, the later one winning for each name.
pub(super) fn collect(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    overrides: &[(String, String)],
) -> Result<Settings, ConfigError> {
    let mut settings = match file {
        Some(path) => from_file(path)?,
        None => Settings::new(),
    };
    settings.extend(from_env(env));
    settings.extend(from_overrides(overrides));
    Ok(settings)
}

pub(super) fn from_file(path: &Path) -> Result<Settings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| file_error(path, e.to_string()))?;
    from_toml(&text, path)
}

/// Parses TOML whose keys are Kafka names. `log.retention.hours = 1` (dotted: nested tables to TOML) and
/// `"log.retention.hours" = 1` (one quoted key) both mean `log.retention.hours`, so tables are flattened.
pub(super) fn from_toml(text: &str, path: &Path) -> Result<Settings, ConfigError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| file_error(path, e.to_string()))?;
    let mut settings = Settings::new();
    flatten("", &table, &mut settings, path)?;
    Ok(settings)
}

fn flatten(
    prefix: &str,
    table: &toml::Table,
    out: &mut Settings,
    path: &Path,
) -> Result<(), ConfigError> {
    for (key, value) in table {
        let name = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        if let toml::Value::Table(inner) = value {
            flatten(&name, inner, out, path)?;
            continue;
        }
        let text = toml_text(value).ok_or_else(|| {
            file_error(
                path,
                format!("`{name}`: expected a string, number, boolean or array of them"),
            )
        })?;
        let setting = Setting {
            value: text,
            source: ConfigSource::StaticFile,
        };
        // Quoted and dotted spellings of one name are distinct keys to TOML but the same setting to us.
        if out.insert(name.clone(), setting).is_some() {
            return Err(file_error(path, format!("`{name}` is set more than once")));
        }
    }
    Ok(())
}

/// The string Kafka would see in a properties file: arrays become comma-separated lists (for `log.dirs`).
fn toml_text(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::Array(items) => {
            let items: Option<Vec<String>> = items.iter().map(toml_scalar).collect();
            items.map(|items| items.join(","))
        }
        scalar => toml_scalar(scalar),
    }
}

fn toml_scalar(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(text) => Some(text.clone()),
        toml::Value::Integer(n) => Some(n.to_string()),
        toml::Value::Float(x) => Some(x.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Datetime(_) | toml::Value::Array(_) | toml::Value::Table(_) => None,
    }
}

/// `FERRITE_LOG_RETENTION_HOURS=24` is `log.retention.hours=24`; other variables are not ours.
pub(super) fn from_env(env: impl IntoIterator<Item = (String, String)>) -> Settings {
    env.into_iter()
        .filter_map(|(var, value)| {
            let name = env_setting_name(&var)?;
            let source = ConfigSource::Environment;
            Some((name, Setting { value, source }))
        })
        .collect()
}

/// The Kafka name an environment variable stands for, if it is a setting at all.
pub(super) fn env_setting_name(var: &str) -> Option<String> {
    let rest = var.strip_prefix(ENV_PREFIX)?;
    if IGNORED_ENV_VARS.contains(&var) {
        return None;
    }
    Some(rest.to_ascii_lowercase().replace('_', "."))
}

/// The environment variable that sets Kafka setting `name`: the inverse of [`env_setting_name`].
pub(super) fn env_var_for(name: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        name.to_ascii_uppercase().replace('.', "_")
    )
}

/// `--override name=value` pairs; a repeated name keeps the last value, as a shell user would expect.
pub(super) fn from_overrides(overrides: &[(String, String)]) -> Settings {
    overrides
        .iter()
        .map(|(name, value)| {
            let setting = Setting {
                value: value.clone(),
                source: ConfigSource::CommandLine,
            };
            (name.trim().to_string(), setting)
        })
        .collect()
}

fn file_error(path: &Path, reason: String) -> ConfigError {
    ConfigError::File {
        path: path.to_path_buf(),
        reason,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn toml(text: &str) -> Result<Settings, ConfigError> {
        from_toml(text, Path::new("test.toml"))
    }

    fn value(settings: &Settings, name: &str) -> String {
        settings[name].value.clone()
    }

    #[test]
    fn nested_and_quoted_keys_flatten_to_kafka_names() {
        let settings = toml(
            r#"
            "log.retention.hours" = 24
            num.partitions = 3
            log.dirs = ["/a", "/b"]
            min.cleanable.ratio = 0.25
            [auto.create.topics]
            enable = false
            "#,
        )
        .unwrap();
        assert_eq!(value(&settings, "log.retention.hours"), "24");
        assert_eq!(value(&settings, "num.partitions"), "3");
        assert_eq!(value(&settings, "log.dirs"), "/a,/b");
        assert_eq!(value(&settings, "min.cleanable.ratio"), "0.25");
        assert_eq!(value(&settings, "auto.create.topics.enable"), "false");
        assert!(settings
            .values()
            .all(|s| s.source == ConfigSource::StaticFile));
    }

    #[test]
    fn one_name_spelled_twice_is_an_error() {
        let error = toml("\"num.partitions\" = 1\nnum.partitions = 2\n").unwrap_err();
        assert!(error.to_string().contains("num.partitions"), "{error}");
    }

    #[test]
    fn bad_toml_and_datetimes_are_file_errors() {
        assert!(matches!(
            toml("num.partitions = "),
            Err(ConfigError::File { .. })
        ));
        let error = toml("node.id = 1979-05-27").unwrap_err();
        assert!(error.to_string().contains("node.id"), "{error}");
    }

    #[test]
    fn environment_names_map_to_kafka_names() {
        assert_eq!(
            env_setting_name("FERRITE_LOG_RETENTION_HOURS").as_deref(),
            Some("log.retention.hours")
        );
        assert_eq!(env_setting_name("FERRITE_CONFIG"), None);
        assert_eq!(env_setting_name("FERRITE_LOG"), None);
        assert_eq!(env_setting_name("PATH"), None);
        assert_eq!(env_setting_name("ferrite_node_id"), None);
        assert_eq!(
            env_var_for("log.retention.hours"),
            "FERRITE_LOG_RETENTION_HOURS"
        );
    }

    #[test]
    fn later_layers_win() {
        let env = vec![("FERRITE_NUM_PARTITIONS".to_string(), "3".to_string())];
        let overrides = vec![("num.partitions".to_string(), "4".to_string())];
        let merged = collect(None, env.clone(), &overrides).unwrap();
        assert_eq!(merged["num.partitions"].value, "4");
        assert_eq!(merged["num.partitions"].source, ConfigSource::CommandLine);
        let merged = collect(None, env, &[]).unwrap();
        assert_eq!(merged["num.partitions"].source, ConfigSource::Environment);
    }

    #[test]
    fn missing_file_is_a_file_error() {
        let error = collect(
            Some(Path::new("/nonexistent/ferrite.toml")),
            Vec::new(),
            &[],
        )
        .unwrap_err();
        assert!(matches!(error, ConfigError::File { .. }), "{error}");
    }
}
