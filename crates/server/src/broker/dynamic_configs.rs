//! Configs that change while the broker runs: dynamic broker configs and per-group configs.
//!
//! ```text
//!   change ─▶ validate (whole entity) ─▶ save with the cluster metadata ─▶ apply
//!                                         (under the metadata lock: ordered with topic changes)
//!   apply, broker configs:  new LiveConfig ─▶ every topic's effective config recomputed; partitions whose
//!                           effective config changed get it at once (topics that override a setting keep theirs)
//!   apply, group configs:   the group's session timeout and heartbeat interval, for its current members too
//! ```
//! Nothing is applied that was not saved first, so a restart finds what clients were told succeeded.

use super::{clone_topic, Broker, Topic, TopicError};
use crate::config::dynamic::{
    validate_entity, BrokerEntity, DynamicConfigError, DynamicSettings, LiveConfig,
};
use crate::config::group::{group_timings, validate_group_overrides, GroupOverrides, GroupTimings};
use crate::config::topic::effective_config;
use std::sync::Arc;

impl Broker {
    /// The configuration in force now: the static one with the dynamic broker configs applied.
    pub fn live_config(&self) -> Arc<LiveConfig> {
        Arc::clone(&self.live.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Replaces the dynamic settings of `entity` with what `change` makes of the current ones (AlterConfigs
    /// replaces them all; IncrementalAlterConfigs edits them). The live view is passed for list operations,
    /// which start from the effective value.
    pub fn alter_broker_configs(
        &self,
        entity: BrokerEntity,
        validate_only: bool,
        change: impl FnOnce(&DynamicSettings, &LiveConfig) -> Result<DynamicSettings, TopicError>,
    ) -> Result<(), TopicError> {
        let mut metadata = self.lock_metadata();
        let proposed = change(&metadata.broker_configs.get(entity), &self.live_config())?;
        let canonical = validate_entity(&proposed).map_err(invalid_config)?;
        let mut stored = metadata.broker_configs.clone();
        stored.set(entity, canonical.clone());
        let (next, skipped) = LiveConfig::new(&self.config, &stored);
        if let Some(reason) = skipped.first() {
            return Err(TopicError::InvalidConfig(reason.clone()));
        }
        if validate_only {
            return Ok(());
        }
        let previous = std::mem::replace(&mut metadata.broker_configs, stored);
        if let Err(e) = self.store.save(&metadata) {
            metadata.broker_configs = previous;
            return Err(e.into());
        }
        *self.live.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
        tracing::info!(?entity, settings = ?canonical, "dynamic broker configs changed");
        self.apply_topic_defaults();
        Ok(())
    }

    /// Gives every topic the effective config the current topic defaults make with its overrides. Called with
    /// the metadata lock held, like every other change to topics.
    fn apply_topic_defaults(&self) {
        let live = self.live_config();
        for topic in self.topics() {
            match effective_config(&live.effective.topic_defaults, &topic.overrides) {
                Ok(effective) if effective != topic.effective => {
                    for partition in &topic.partitions {
                        partition.log().update_config(effective.log.clone());
                    }
                    tracing::info!(topic = %topic.name, "topic config changed with the broker defaults");
                    self.publish(Topic {
                        effective,
                        ..clone_topic(&topic)
                    });
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(topic = %topic.name, error = %e, "keeping the topic's config: the new defaults do not apply to it")
                }
            }
        }
    }

    /// A group's own configs (empty if it has none).
    pub fn group_overrides(&self, group_id: &str) -> GroupOverrides {
        self.lock_metadata()
            .group_configs
            .get(group_id)
            .cloned()
            .unwrap_or_default()
    }

    /// The session timeout and heartbeat interval of a consumer-protocol group.
    pub fn group_timings(&self, group_id: &str) -> GroupTimings {
        group_timings(&self.config, &self.group_overrides(group_id))
    }

    /// Replaces a group's configs with what `change` makes of the current ones, then applies them to the
    /// group and its members.
    pub fn alter_group_configs(
        &self,
        group_id: &str,
        validate_only: bool,
        change: impl FnOnce(&GroupOverrides) -> Result<GroupOverrides, TopicError>,
    ) -> Result<(), TopicError> {
        let mut metadata = self.lock_metadata();
        let current = metadata
            .group_configs
            .get(group_id)
            .cloned()
            .unwrap_or_default();
        let proposed = change(&current)?;
        let canonical = validate_group_overrides(&self.config, &proposed)
            .map_err(|e| TopicError::InvalidConfig(e.to_string()))?;
        if validate_only {
            return Ok(());
        }
        let previous = if canonical.is_empty() {
            metadata.group_configs.remove(group_id)
        } else {
            metadata
                .group_configs
                .insert(group_id.to_string(), canonical.clone())
        };
        if let Err(e) = self.store.save(&metadata) {
            match previous {
                Some(previous) => metadata
                    .group_configs
                    .insert(group_id.to_string(), previous),
                None => metadata.group_configs.remove(group_id),
            };
            return Err(e.into());
        }
        drop(metadata);
        let timings = group_timings(&self.config, &canonical);
        tracing::info!(group = group_id, settings = ?canonical, "group configs changed");
        if let Some(groups) = self.groups() {
            groups.apply_group_timings(group_id, timings);
        }
        Ok(())
    }
}

fn invalid_config(e: DynamicConfigError) -> TopicError {
    TopicError::InvalidConfig(e.to_string())
}
