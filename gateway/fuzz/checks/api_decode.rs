//! The `api_decode` fuzz target's checks, as a plain function: the fuzz target calls it
//! on every generated input, and `gateway/tests/fuzz_seeds.rs` (stable, in CI) on every
//! input kept in `seeds/api_decode/`.
//!
//! Every body, path segment and query string a client can send is decoded without a
//! panic, and whatever decodes is valid (names and ids re-validate).

use keygate_gateway::api::body::{path_segment, query};
use keygate_proto::api::{
    AddAgentBody, ApproveBody, DenyBody, FileRequest, RevokeBody, SetSecretBody,
};

pub fn api_decode(data: &[u8]) {
    if let Ok(r) = serde_json::from_slice::<FileRequest>(data) {
        for s in &r.secrets {
            assert!(keygate_proto::SecretName::new(s.as_str()).is_ok());
        }
    }
    let _ = serde_json::from_slice::<ApproveBody>(data);
    let _ = serde_json::from_slice::<DenyBody>(data);
    let _ = serde_json::from_slice::<RevokeBody>(data);
    let _ = serde_json::from_slice::<AddAgentBody>(data);
    let _ = serde_json::from_slice::<SetSecretBody>(data);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(seg) = path_segment(text) {
            let _ = keygate_proto::SecretName::new(seg);
        }
        let _ = query(Some(text), "wait");
        let _ = keygate_proto::RequestId::parse(text);
        let _ = keygate_proto::duration::parse(text);
    }
}
