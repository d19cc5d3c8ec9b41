//! Subscriptions by regular expression (KIP-848 `SubscribedTopicRegex`): the coordinator, not the client,
//! turns a member's pattern into topics, so every member of a group sees the same topics at the same epoch.
//!
//! ```text
//!   heartbeat with a regex ─▶ compiled (RE2 syntax, matched against the whole topic name, as Kafka does)
//!                              invalid: INVALID_REGULAR_EXPRESSION, nothing changes
//!   refresh ─▶ every regex in use resolved against the topic names the view lists
//!     when:   a regex in use has never been resolved (at once), or the set of topic names changed and the
//!             last resolution is at least REFRESH_INTERVAL_MS old (Kafka's batching of refreshes)
//!   member's subscription = its topic names ∪ the topics its regex resolved to
//! ```
//! Resolutions are not written to `__consumer_offsets` (Kafka writes them, as a cache): the member records
//! keep each member's pattern, and a restored group resolves them again from the topics that exist then.

use super::{ConsumerGroupError, TopicView};
use regex::{Regex, RegexBuilder};
use std::collections::{BTreeMap, BTreeSet};

/// Least time between two resolutions caused by topics being created or deleted.
pub const REFRESH_INTERVAL_MS: i64 = 10_000;
/// Bound on a compiled pattern, so a hostile one cannot take a lot of memory.
const COMPILED_SIZE_LIMIT: usize = 1 << 20;

/// Compiles a subscription pattern: RE2 syntax (the `regex` crate's is RE2's), matched against a whole topic
/// name like Java's `Matcher.matches`.
pub fn compile(pattern: &str) -> Result<Regex, ConsumerGroupError> {
    let invalid = |e: regex::Error| ConsumerGroupError::InvalidRegularExpression {
        regex: pattern.to_string(),
        reason: e.to_string(),
    };
    // Checked on its own first: anchoring an invalid pattern such as `a)|(b` could make it valid.
    RegexBuilder::new(pattern)
        .size_limit(COMPILED_SIZE_LIMIT)
        .build()
        .map_err(invalid)?;
    RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(COMPILED_SIZE_LIMIT)
        .build()
        .map_err(invalid)
}

/// The group's regular expressions and the topics each resolved to.
#[derive(Debug, Clone, Default)]
pub(super) struct RegexSubscriptions {
    /// Pattern -> (compiled, topics it matched at the last resolution).
    resolved: BTreeMap<String, (Regex, BTreeSet<String>)>,
    last_refresh_ms: Option<i64>,
    /// The view's [`TopicView::names_version`] the last resolution saw.
    names_version: Option<u64>,
}

impl RegexSubscriptions {
    /// The topics `pattern` resolved to, if it has been resolved.
    pub fn topics_of(&self, pattern: &str) -> Option<&BTreeSet<String>> {
        self.resolved.get(pattern).map(|(_, topics)| topics)
    }

    /// Forgets patterns no member uses and resolves the others when due (see the module doc), or always with
    /// `force`. Returns whether the topics of a pattern in use changed.
    pub fn refresh(
        &mut self,
        in_use: &BTreeSet<String>,
        view: &impl TopicView,
        now_ms: i64,
        force: bool,
    ) -> bool {
        self.resolved.retain(|pattern, _| in_use.contains(pattern));
        if in_use.is_empty() {
            return false;
        }
        let unresolved = in_use.iter().any(|p| !self.resolved.contains_key(p));
        let version = view.names_version();
        let due = self
            .last_refresh_ms
            .is_none_or(|last| now_ms.saturating_sub(last) >= REFRESH_INTERVAL_MS);
        if !(force || unresolved || (self.names_version != Some(version) && due)) {
            return false;
        }
        let names = view.topic_names();
        let mut changed = false;
        for pattern in in_use {
            let regex = match self.resolved.get(pattern) {
                Some((regex, _)) => regex.clone(),
                // Patterns are checked when a heartbeat brings them; one that fails here is treated as
                // matching nothing rather than failing the whole group.
                None => match compile(pattern) {
                    Ok(regex) => regex,
                    Err(_) => continue,
                },
            };
            let topics: BTreeSet<String> = names
                .iter()
                .filter(|n| regex.is_match(n))
                .cloned()
                .collect();
            if self.topics_of(pattern) != Some(&topics) {
                changed = true;
            }
            self.resolved.insert(pattern.clone(), (regex, topics));
        }
        self.last_refresh_ms = Some(now_ms);
        self.names_version = Some(version);
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assignor::TopicMetadata;
    use uuid::Uuid;

    fn view(names: &[&str]) -> TopicMetadata {
        names
            .iter()
            .map(|n| (n.to_string(), (Uuid::from_u128(n.len() as u128), 1)))
            .collect()
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn patterns_match_whole_topic_names_in_re2_syntax() {
        let re = compile("topic_.*").expect("valid");
        assert!(re.is_match("topic_a") && !re.is_match("my_topic_a"));
        let re = compile("^orders-(eu|us)$").expect("valid");
        assert!(re.is_match("orders-eu") && !re.is_match("orders-eu2"));
        assert!(compile(r"\p{L}+")
            .expect("unicode classes")
            .is_match("Ωmega"));
        for bad in ["topic_(", "a)|(b", "(?<=x)y", "*"] {
            assert!(
                matches!(
                    compile(bad),
                    Err(ConsumerGroupError::InvalidRegularExpression { .. })
                ),
                "{bad}"
            );
        }
        assert_eq!(
            compile("[").map(|_| ()).expect_err("invalid").error_code(),
            128,
            "INVALID_REGULAR_EXPRESSION"
        );
    }

    #[test]
    fn new_patterns_resolve_at_once_and_topic_changes_wait_for_the_interval() {
        let mut subs = RegexSubscriptions::default();
        let in_use = set(&["t_.*"]);
        assert!(subs.refresh(&in_use, &view(&["t_a", "x"]), 0, false));
        assert_eq!(subs.topics_of("t_.*"), Some(&set(&["t_a"])));
        let grown = view(&["t_a", "t_b", "x"]);
        assert!(
            !subs.refresh(&in_use, &grown, 5_000, false),
            "within the interval"
        );
        assert!(subs.refresh(&in_use, &grown, 10_000, false));
        assert_eq!(subs.topics_of("t_.*"), Some(&set(&["t_a", "t_b"])));
        assert!(
            !subs.refresh(&in_use, &grown, 30_000, false),
            "nothing changed"
        );
        // A second pattern is resolved at once, whatever the interval.
        let both = set(&["t_.*", "x"]);
        assert!(subs.refresh(&both, &grown, 30_001, false));
        assert_eq!(subs.topics_of("x"), Some(&set(&["x"])));
        assert!(!subs.refresh(&set(&["x"]), &grown, 30_002, false));
        assert_eq!(
            subs.topics_of("t_.*"),
            None,
            "unused patterns are forgotten"
        );
    }
}
