//! `keygate secrets set|list|rm` (operator). A value is read from stdin, never argv.

use std::io::Read as _;

use hyper::Method;
use keygate_proto::api::{SecretInfo, SetSecretBody};
use keygate_proto::{SecretName, SecretValue};
use zeroize::Zeroizing;

use crate::args::ListArgs;
use crate::client::{Client, encode_name};
use crate::failure::{Failure, Outcome};
use crate::output::{json, relative, table};

/// The largest value `secrets set` accepts (the API's body limit leaves room for JSON).
const MAX_VALUE: usize = 48 * 1024;

pub async fn set(client: &Client, name: SecretName) -> Outcome {
    let mut raw = Zeroizing::new(Vec::new());
    std::io::stdin()
        .take(MAX_VALUE as u64 + 1)
        .read_to_end(&mut raw)
        .map_err(|e| Failure::error(format!("cannot read the value from stdin: {e}")))?;
    if raw.len() > MAX_VALUE {
        return Err(Failure::error(format!(
            "the value is larger than {} KiB",
            MAX_VALUE / 1024
        )));
    }
    let keep = if raw.ends_with(b"\r\n") {
        raw.len() - 2
    } else if raw.ends_with(b"\n") {
        raw.len() - 1
    } else {
        raw.len()
    };
    raw.truncate(keep);
    if raw.is_empty() {
        return Err(Failure::error(
            "the value is empty: pipe it on stdin, e.g. `keygate secrets set NAME < file`",
        ));
    }
    let text = std::str::from_utf8(&raw).map_err(|_| {
        Failure::error("the value is not UTF-8 text: encode binary values (base64)")
    })?;
    let body = SetSecretBody {
        value: SecretValue::new(text.to_owned()),
    };
    let info: SecretInfo = client
        .call(
            Method::PUT,
            &format!("/v1/secrets/{}", encode_name(name.as_str())),
            Some(&body),
        )
        .await?;
    eprintln!(
        "stored {} ({} bytes, {})",
        info.name, info.size, info.backend
    );
    Ok(())
}

pub async fn list(client: &Client, args: ListArgs) -> Outcome {
    let all: Vec<SecretInfo> = client.get("/v1/secrets").await?;
    if args.json {
        json(&all);
        return Ok(());
    }
    if all.is_empty() {
        eprintln!("no secrets: add one with `keygate secrets set NAME < value-file`");
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|s| {
            vec![
                s.name.to_string(),
                relative(s.updated_at),
                s.backend.clone(),
            ]
        })
        .collect();
    table(&["NAME", "UPDATED", "STORE"], &rows);
    Ok(())
}

pub async fn rm(client: &Client, name: SecretName) -> Outcome {
    let _: serde_json::Value = client
        .call(
            Method::DELETE,
            &format!("/v1/secrets/{}", encode_name(name.as_str())),
            None::<&()>,
        )
        .await?;
    eprintln!("removed {name}");
    Ok(())
}
