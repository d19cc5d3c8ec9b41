//! A change to a resource's config settings as AlterConfigs (replace them all) or IncrementalAlterConfigs
//! (SET / DELETE / APPEND / SUBTRACT, in request order) asks for it. It is data, so a broker can forward it to
//! the active controller, which applies it to the settings it holds.

use super::topic::DescribedConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const OP_SET: i8 = 0;
pub const OP_DELETE: i8 = 1;
pub const OP_APPEND: i8 = 2;
pub const OP_SUBTRACT: i8 = 3;
/// Kafka's ConfigType code for LIST configs, the only ones APPEND and SUBTRACT apply to.
const CONFIG_TYPE_LIST: i8 = 7;

type Settings = BTreeMap<String, String>;

/// What a request asks for one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfigChange {
    /// AlterConfigs: these settings and no others.
    Replace(Settings),
    /// IncrementalAlterConfigs: (name, operation, value) in request order.
    Edit(Vec<(String, i8, Option<String>)>),
}

/// Why a change cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    /// INVALID_CONFIG.
    #[error("{0}")]
    InvalidConfig(String),
    /// INVALID_REQUEST: an operation code Kafka does not have.
    #[error("{0}")]
    InvalidRequest(String),
}

/// The effective value of `name` if it is a list config (APPEND and SUBTRACT start from it), else `None`.
pub fn list_value(described: &[DescribedConfig], name: &str) -> Option<String> {
    described
        .iter()
        .find(|d| d.name == name && d.config_type == CONFIG_TYPE_LIST)
        .map(|d| d.value.clone().unwrap_or_default())
}

impl ConfigChange {
    /// The settings this change makes of `current`. `list_value` gives a list config's effective value (the
    /// starting point of APPEND / SUBTRACT when the resource does not set it itself), `None` for other names.
    pub fn apply(
        &self,
        current: &Settings,
        list_value: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, ChangeError> {
        let ops = match self {
            ConfigChange::Replace(settings) => return Ok(settings.clone()),
            ConfigChange::Edit(ops) => ops,
        };
        let mut next = current.clone();
        for (name, op, value) in ops {
            match *op {
                OP_SET => {
                    let v = value.clone().ok_or_else(|| {
                        ChangeError::InvalidConfig(format!("SET {name} needs a value"))
                    })?;
                    next.insert(name.clone(), v);
                }
                OP_DELETE => {
                    next.remove(name);
                }
                OP_APPEND | OP_SUBTRACT => {
                    let effective = list_value(name).ok_or_else(|| {
                        ChangeError::InvalidConfig(format!(
                            "{name} is not a list config; APPEND and SUBTRACT need one"
                        ))
                    })?;
                    // An earlier operation of this request on the same name counts.
                    let effective = next.get(name).cloned().unwrap_or(effective);
                    let given = value.as_deref().unwrap_or("");
                    next.insert(name.clone(), edit_list(&effective, given, *op == OP_APPEND));
                }
                other => {
                    return Err(ChangeError::InvalidRequest(format!(
                        "unknown config operation {other}"
                    )))
                }
            }
        }
        Ok(next)
    }
}

/// Kafka's list edit: APPEND adds the items not there yet, SUBTRACT removes the items given.
fn edit_list(current: &str, given: &str, append: bool) -> String {
    let items_of = |text: &str| -> Vec<String> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    };
    let mut items = items_of(current);
    for item in items_of(given) {
        if append && !items.contains(&item) {
            items.push(item);
        } else if !append {
            items.retain(|i| *i != item);
        }
    }
    items.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn edit(ops: &[(&str, i8, Option<&str>)]) -> ConfigChange {
        ConfigChange::Edit(
            ops.iter()
                .map(|(n, o, v)| (n.to_string(), *o, v.map(str::to_string)))
                .collect(),
        )
    }

    #[test]
    fn incremental_operations() {
        let current = settings(&[("a", "1"), ("b", "2")]);
        let lists = |name: &str| (name == "policy").then(|| "delete".to_string());
        let next = edit(&[
            ("a", OP_SET, Some("10")),
            ("b", OP_DELETE, None),
            ("policy", OP_APPEND, Some("compact, delete")),
        ])
        .apply(&current, lists)
        .expect("valid");
        assert_eq!(next, settings(&[("a", "10"), ("policy", "delete,compact")]));
        let next = edit(&[("policy", OP_SUBTRACT, Some("delete"))])
            .apply(&next, lists)
            .expect("valid");
        assert_eq!(next["policy"], "compact");
        assert!(matches!(
            edit(&[("a", OP_APPEND, Some("x"))]).apply(&current, lists),
            Err(ChangeError::InvalidConfig(_))
        ));
        assert!(matches!(
            edit(&[("a", 9, Some("x"))]).apply(&current, lists),
            Err(ChangeError::InvalidRequest(_))
        ));
        assert!(matches!(
            edit(&[("a", OP_SET, None)]).apply(&current, lists),
            Err(ChangeError::InvalidConfig(_))
        ));
        let replaced = ConfigChange::Replace(settings(&[("c", "3")]))
            .apply(&current, lists)
            .expect("valid");
        assert_eq!(replaced, settings(&[("c", "3")]));
    }
}
