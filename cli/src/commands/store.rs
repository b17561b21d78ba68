//! `keygate unlock` and `keygate lock`: the encrypted-file store's key.

use std::io::{IsTerminal as _, Read as _};

use hyper::Method;
use keygate_proto::SecretValue;
use keygate_proto::api::UnlockBody;
use zeroize::Zeroizing;

use crate::client::Client;
use crate::failure::{Failure, Outcome};

pub async fn unlock(client: &Client) -> Outcome {
    let passphrase = if std::io::stdin().is_terminal() {
        Zeroizing::new(
            rpassword::prompt_password("passphrase for the keygate secret store: ")
                .map_err(|e| Failure::error(format!("cannot read the passphrase: {e}")))?,
        )
    } else {
        let mut s = Zeroizing::new(String::new());
        std::io::stdin()
            .take(4096)
            .read_to_string(&mut s)
            .map_err(|e| Failure::error(format!("cannot read the passphrase from stdin: {e}")))?;
        Zeroizing::new(s.trim_end_matches(['\n', '\r']).to_owned())
    };
    let body = UnlockBody {
        passphrase: SecretValue::new(passphrase.to_string()),
    };
    let _: serde_json::Value = client
        .call(Method::POST, "/v1/store/unlock", Some(&body))
        .await?;
    eprintln!("the secret store is unlocked");
    Ok(())
}

pub async fn lock(client: &Client) -> Outcome {
    let _: serde_json::Value = client
        .call(Method::POST, "/v1/store/lock", None::<&()>)
        .await?;
    eprintln!("the secret store is locked: releases fail until `keygate unlock`");
    Ok(())
}
