#![allow(clippy::unwrap_used)]

use super::*;
use std::io::Write;

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn toml_file(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

fn with_overrides(items: &[(&str, &str)]) -> Result<BrokerConfig, ConfigError> {
    BrokerConfig::load(None, Vec::new(), &pairs(items))
}

fn entry(config: &BrokerConfig, name: &str) -> DescribedConfig {
    config
        .describe()
        .into_iter()
        .find(|e| e.name == name)
        .unwrap()
}

#[test]
fn defaults_equal_kafkas_and_ferrites_documented_ones() {
    let config = BrokerConfig::load(None, Vec::new(), &[]).unwrap();
    assert_eq!(config, BrokerConfig::default());
    assert_eq!(config.node_id, 1);
    assert_eq!(config.listener, "127.0.0.1:9092".parse().unwrap());
    assert_eq!(
        (config.advertised_host.as_str(), config.advertised_port),
        ("127.0.0.1", 9092)
    );
    assert_eq!(config.log_dirs, vec![PathBuf::from("./data")]);
    assert_eq!(
        (config.num_partitions, config.default_replication_factor),
        (1, 1)
    );
    assert!(config.auto_create_topics_enable);
    assert_eq!(config.socket_request_max_bytes, 104_857_600);
    assert_eq!(
        (config.max_connections, config.queued_max_requests),
        (10_000, 500)
    );
    assert_eq!(config.log_retention_check_interval_ms, 300_000);
    assert_eq!(config.log_flush_scheduler_interval_ms, 1000);
    assert_eq!(config.offsets_topic_num_partitions, 50);
    assert_eq!(config.topic_defaults, TopicDefaults::default());
}

#[test]
fn precedence_is_file_then_env_then_override() {
    let file = toml_file("num.partitions = 2\nnode.id = 7\n");
    let env = pairs(&[
        ("FERRITE_NUM_PARTITIONS", "3"),
        ("FERRITE_LOG_RETENTION_HOURS", "24"),
    ]);
    let overrides = pairs(&[("num.partitions", "4")]);
    let all = BrokerConfig::load(Some(file.path()), env.clone(), &overrides).unwrap();
    assert_eq!((all.num_partitions, all.node_id), (4, 7));
    assert_eq!(all.sources["num.partitions"], ConfigSource::CommandLine);
    assert_eq!(all.sources["node.id"], ConfigSource::StaticFile);
    let no_flags = BrokerConfig::load(Some(file.path()), env, &[]).unwrap();
    assert_eq!(no_flags.num_partitions, 3);
    assert_eq!(
        no_flags.sources["num.partitions"],
        ConfigSource::Environment
    );
    let retention = no_flags.topic_defaults.get("retention.ms").unwrap();
    assert_eq!(
        (retention.value.as_str(), retention.source),
        ("86400000", ConfigSource::Environment)
    );
    let file_only = BrokerConfig::load(Some(file.path()), Vec::new(), &[]).unwrap();
    assert_eq!(file_only.num_partitions, 2);
}

#[test]
fn toml_accepts_nested_and_quoted_keys() {
    let file = toml_file(
        r#"
        "log.retention.hours" = 1
        log.segment.bytes = 2048
        log.dirs = ["/var/ferrite/a", "/var/ferrite/b"]
        [auto.create.topics]
        enable = false
        "#,
    );
    let config = BrokerConfig::load(Some(file.path()), Vec::new(), &[]).unwrap();
    assert!(!config.auto_create_topics_enable);
    assert_eq!(config.log_dirs.len(), 2);
    let effective =
        super::super::topic::effective_config(&config.topic_defaults, &Default::default()).unwrap();
    assert_eq!(
        (effective.log.retention_ms, effective.log.segment_bytes),
        (3_600_000, 2048)
    );
}

#[test]
fn unknown_settings_are_named_whatever_the_layer() {
    let error = with_overrides(&[("num.io.threadz", "8")]).unwrap_err();
    assert!(matches!(
        &error,
        ConfigError::UnknownSetting {
            origin: ConfigSource::CommandLine,
            ..
        }
    ));
    assert!(error.to_string().contains("num.io.threadz"), "{error}");
    let env = pairs(&[("FERRITE_LOG_RETENTION_HOUR", "1")]);
    let error = BrokerConfig::load(None, env, &[]).unwrap_err();
    assert_eq!(error.setting_name(), Some("log.retention.hour"));
    let file = toml_file("controller.quorum.voter = \"1@localhost:9093\"\n");
    let error = BrokerConfig::load(Some(file.path()), Vec::new(), &[]).unwrap_err();
    assert_eq!(error.setting_name(), Some("controller.quorum.voter"));
}

#[test]
fn kraft_settings_describe_a_node_of_a_cluster() {
    let config = with_overrides(&[
        ("node.id", "2"),
        ("process.roles", "broker,controller"),
        (
            "controller.quorum.voters",
            "1@127.0.0.1:9093,2@127.0.0.1:9095",
        ),
        (
            "listeners",
            "PLAINTEXT://127.0.0.1:9094,CONTROLLER://127.0.0.1:9095",
        ),
    ])
    .unwrap();
    assert_eq!(config.listener, "127.0.0.1:9094".parse().unwrap());
    assert_eq!(
        config.quorum.controller_listener,
        Some("127.0.0.1:9095".parse().unwrap())
    );
    assert_eq!(config.quorum.voters.len(), 2);
    assert!(!config.quorum.is_single_node());
    assert_eq!(
        entry(&config, "listeners").value.as_deref(),
        Some("PLAINTEXT://127.0.0.1:9094,CONTROLLER://127.0.0.1:9095")
    );
    let broker_only = with_overrides(&[
        ("node.id", "4"),
        ("process.roles", "broker"),
        ("controller.quorum.voters", "1@127.0.0.1:9093"),
    ])
    .unwrap();
    assert!(broker_only.quorum.broker && !broker_only.quorum.controller);
    for (settings, named) in [
        (vec![("process.roles", "controller")], "process.roles"),
        (
            vec![("controller.quorum.voters", "1@127.0.0.1:9093")],
            "listeners",
        ),
        (
            vec![
                ("node.id", "3"),
                ("controller.quorum.voters", "1@127.0.0.1:9093"),
                ("listeners", "CONTROLLER://127.0.0.1:9093"),
            ],
            "controller.quorum.voters",
        ),
        (vec![("listeners", "SSL://127.0.0.1:9093")], "listeners"),
        (
            vec![("controller.quorum.bootstrap.servers", "h:9093")],
            "controller.quorum.bootstrap.servers",
        ),
    ] {
        let error = with_overrides(&settings).unwrap_err();
        assert_eq!(error.setting_name(), Some(named), "{settings:?}: {error}");
    }
}

#[test]
fn ignored_and_foreign_environment_variables_are_skipped() {
    let env = pairs(&[
        ("FERRITE_CONFIG", "/etc/ferrite.toml"),
        ("FERRITE_LOG", "debug"),
        ("HOME", "/root"),
    ]);
    assert_eq!(
        BrokerConfig::load(None, env, &[]).unwrap(),
        BrokerConfig::default()
    );
}

#[test]
fn invalid_values_are_named() {
    for (name, value) in [
        ("num.partitions", "-1"),
        ("num.partitions", "many"),
        ("node.id", "-1"),
        ("default.replication.factor", "40000"),
        ("auto.create.topics.enable", "yes"),
        ("log.message.timestamp.type", "BrokerTime"),
        ("compression.type", "brotli"),
        ("log.cleaner.min.cleanable.ratio", "2"),
        ("listeners", "SSL://127.0.0.1:9093"),
        (
            "listeners",
            "PLAINTEXT://127.0.0.1:9092,PLAINTEXT://127.0.0.1:9093",
        ),
        ("listeners", "127.0.0.1"),
        ("listeners", "127.0.0.1:99999"),
        ("advertised.listeners", "PLAINTEXT://0.0.0.0:9092"),
        ("log.dirs", " , "),
    ] {
        let error = with_overrides(&[(name, value)]).unwrap_err();
        assert_eq!(error.setting_name(), Some(name), "{name}={value}: {error}");
        assert!(error.to_string().contains(name), "{error}");
    }
}

#[test]
fn listener_forms_and_advertised_defaults() {
    let wildcard = with_overrides(&[("listeners", "0.0.0.0:9093")]).unwrap();
    assert_eq!(wildcard.listener, "0.0.0.0:9093".parse().unwrap());
    assert_eq!(
        (wildcard.advertised_host.as_str(), wildcard.advertised_port),
        ("127.0.0.1", 9093)
    );
    let empty_host = with_overrides(&[("listeners", "PLAINTEXT://:9094")]).unwrap();
    assert!(empty_host.listener.ip().is_unspecified());
    let v6 = with_overrides(&[("listeners", "plaintext://[::1]:9095")]).unwrap();
    assert_eq!(v6.advertised_host, "::1");
    assert_eq!(
        entry(&v6, "advertised.listeners").value.as_deref(),
        Some("PLAINTEXT://[::1]:9095")
    );
    let named = with_overrides(&[("listeners", "localhost:9096")]).unwrap();
    assert_eq!(named.advertised_host, "localhost");
    let advertised = with_overrides(&[
        ("listeners", "0.0.0.0:0"),
        ("advertised.listeners", "PLAINTEXT://broker.example:19092"),
    ])
    .unwrap();
    assert_eq!(
        (
            advertised.advertised_host.as_str(),
            advertised.advertised_port
        ),
        ("broker.example", 19092)
    );
    let ephemeral = with_overrides(&[("listeners", "127.0.0.1:0")]).unwrap();
    assert_eq!(ephemeral.advertised_port_or(40_000), 40_000);
    assert_eq!(advertised.advertised_port_or(40_000), 19092);
}

#[test]
fn log_dirs_wins_over_log_dir() {
    let single = with_overrides(&[("log.dir", "/tmp/one")]).unwrap();
    assert_eq!(single.log_dirs, vec![PathBuf::from("/tmp/one")]);
    assert_eq!(entry(&single, "log.dirs").source, ConfigSource::CommandLine);
    let env = pairs(&[("FERRITE_LOG_DIR", "/tmp/one")]);
    let both = BrokerConfig::load(None, env, &pairs(&[("log.dirs", "/tmp/a, /tmp/b")])).unwrap();
    assert_eq!(
        both.log_dirs,
        vec![PathBuf::from("/tmp/a"), PathBuf::from("/tmp/b")]
    );
}

#[test]
fn describe_reports_values_sources_and_synonyms() {
    let config = with_overrides(&[("node.id", "3"), ("log.retention.hours", "1")]).unwrap();
    let entries = config.describe();
    assert!(entries
        .iter()
        .all(|e| !e.is_sensitive && e.documentation.is_some()));
    let writable: Vec<&str> = entries
        .iter()
        .filter(|e| !e.read_only)
        .map(|e| e.name.as_str())
        .collect();
    assert!(writable.contains(&"max.connections") && writable.contains(&"log.retention.hours"));
    assert!(!writable.contains(&"node.id") && !writable.contains(&"num.partitions"));
    let node = entry(&config, "node.id");
    assert_eq!(
        (node.value.as_deref(), node.source.kafka_code()),
        (Some("3"), 4)
    );
    let expected = vec![
        ConfigSynonym {
            name: "node.id".into(),
            value: "3".into(),
            source: ConfigSource::CommandLine,
        },
        ConfigSynonym {
            name: "node.id".into(),
            value: "1".into(),
            source: ConfigSource::Default,
        },
    ];
    assert_eq!(node.synonyms, expected);
    let partitions = entry(&config, "num.partitions");
    assert_eq!(
        (partitions.value.as_deref(), partitions.source.kafka_code()),
        (Some("1"), 5)
    );
    let hours = entry(&config, "log.retention.hours");
    assert_eq!(
        (hours.value.as_deref(), hours.source),
        (Some("1"), ConfigSource::CommandLine)
    );
    assert_eq!(
        entry(&config, "listeners").value.as_deref(),
        Some("PLAINTEXT://127.0.0.1:9092")
    );
}

#[test]
fn described_defaults_match_the_typed_defaults() {
    let config = BrokerConfig::default();
    for def in BROKER_SETTINGS {
        let value = config.value_of(def.name);
        assert!(value.is_some(), "{} has no value", def.name);
        if let Some(default) = def.default {
            assert_eq!(value.as_deref(), Some(default), "{}", def.name);
        }
        assert!(
            !TopicDefaults::is_broker_synonym(def.name),
            "{} in both tables",
            def.name
        );
    }
}

#[test]
fn every_described_name_is_accepted_back() {
    let config = BrokerConfig::default();
    let round_trip: Vec<_> = config
        .describe()
        .into_iter()
        .filter_map(|e| e.value.map(|value| (e.name, value)))
        .collect();
    let reloaded = BrokerConfig::load(None, Vec::new(), &round_trip).unwrap();
    assert_eq!(
        reloaded
            .describe()
            .iter()
            .map(|e| &e.value)
            .collect::<Vec<_>>(),
        config
            .describe()
            .iter()
            .map(|e| &e.value)
            .collect::<Vec<_>>()
    );
}
