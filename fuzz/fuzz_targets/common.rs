//! Shared by the request targets: one broker state in a temporary directory (like the in-crate
//! `handlers::fuzz_tests`), and a frame built from (api, version, body) run through decode and dispatch.
#![allow(dead_code)]

use bytes::{BufMut, Bytes, BytesMut};
use ferrite_server::config::broker::BrokerConfig;
use ferrite_server::handlers::{dispatch, Client, Dispatched, Response};
use ferrite_server::node::metadata_store::FileMetadataStore;
use ferrite_server::node::Node;
use ferrite_wire::request::parse_request;
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{encode_request_header_into_buffer, StrBytes};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub struct Harness {
    runtime: tokio::runtime::Runtime,
    broker: Arc<Node>,
}

pub fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("ferrite-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let config = BrokerConfig {
            log_dirs: vec![dir.clone()],
            auto_create_topics_enable: false,
            ..BrokerConfig::default()
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let broker = {
            let _context = runtime.enter();
            Node::open(config, Box::new(FileMetadataStore::new(&dir))).expect("open")
        };
        broker
            .create_topic("fuzz", 2, 1, Default::default())
            .expect("topic");
        Harness { runtime, broker }
    })
}

pub fn frame(key: ApiKey, version: i16, body: &[u8]) -> Bytes {
    let mut header = RequestHeader::default();
    header.request_api_key = key as i16;
    header.request_api_version = version;
    header.correlation_id = 5;
    header.client_id = Some(StrBytes::from_static_str("fuzz"));
    let mut buf = BytesMut::new();
    encode_request_header_into_buffer(&mut buf, &header).expect("header");
    buf.put_slice(body);
    buf.freeze()
}

/// Input layout: `[api index, version byte, body...]`; the api is one of `apis`, the version is folded into
/// the range the broker supports for it (so most inputs reach the handler, not the version check).
pub fn run(apis: &[ApiKey], data: &[u8]) {
    let [api, version, body @ ..] = data else {
        return;
    };
    let key = apis[*api as usize % apis.len()];
    let Some(range) = ferrite_wire::api_table::SUPPORTED_APIS
        .iter()
        .find(|a| a.key == key)
    else {
        return;
    };
    let version = range.min + (*version as i16 % (range.max - range.min + 1));
    exercise(frame(key, version, body));
}

/// Decode and dispatch; panics (the fuzzer's finding) on a handler panic or a malformed answer.
pub fn exercise(frame: Bytes) {
    let Ok(parsed) = parse_request(frame) else {
        return;
    };
    let h = harness();
    let response = h.runtime.block_on(async {
        match dispatch(&h.broker, parsed, Client { peer: None }).await {
            Dispatched::Ready(r) => Some(r),
            Dispatched::Deferred(f) => tokio::time::timeout(Duration::from_millis(20), f)
                .await
                .ok(),
        }
    });
    match response {
        Some(Response::Close(reason)) => assert!(!reason.contains("panicked"), "{reason}"),
        Some(Response::Frame(bytes)) => {
            let size = i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
            assert_eq!(size, bytes.len() - 4, "frame size");
        }
        _ => {}
    }
}
