//! `keygate audit [--since D] [--json] [--verify]`.

use keygate_proto::api::AuditVerify;

use crate::args::AuditArgs;
use crate::client::Client;
use crate::failure::{Failure, Outcome};
use crate::output::json;

pub async fn run(client: &Client, args: AuditArgs) -> Outcome {
    if args.verify {
        let v: AuditVerify = client.get("/v1/audit/verify").await?;
        if args.json {
            json(&v);
        }
        return if v.ok {
            eprintln!("audit log intact: {} lines, hash chain unbroken", v.lines);
            Ok(())
        } else {
            Err(Failure::error(format!(
                "audit log BROKEN: {}",
                v.problem.unwrap_or_else(|| "unknown problem".into())
            )))
        };
    }
    let path = match args.since {
        Some(d) => format!("/v1/audit?since={}s", d.as_secs()),
        None => "/v1/audit".into(),
    };
    let lines: Vec<serde_json::Value> = client.get(&path).await?;
    if args.json {
        json(&lines);
        return Ok(());
    }
    for line in &lines {
        let Some(obj) = line.as_object() else {
            continue;
        };
        let ts = obj.get("ts").and_then(|v| v.as_str()).unwrap_or("");
        let event = obj.get("event").and_then(|v| v.as_str()).unwrap_or("");
        let mut rest = Vec::new();
        for (k, v) in obj {
            if matches!(k.as_str(), "ts" | "event" | "prev" | "seq") {
                continue;
            }
            let shown = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            rest.push(format!("{k}={shown}"));
        }
        println!("{ts}  {event:<18} {}", rest.join(" "));
    }
    Ok(())
}
