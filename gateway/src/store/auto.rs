//! [`Choice::Auto`](super::Choice::Auto): which backend, and why.
//!
//! A store that already holds secrets is kept, so that a keychain appearing (or vanishing)
//! later never hides them: an existing `secrets.kgv` means the file; an index naming
//! secrets means the keychain, and an error when it no longer answers. Otherwise the
//! keychain is probed with a throwaway item, and used if it answers in time.

use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use super::disk::hex;
use super::index::Index;
use super::keyring::describe;
use super::{Backend, KEYRING_SERVICE, SECRET_FILE, StoreError};

/// Decides the backend for `data_dir`, and says why in words fit for a log line.
pub(crate) fn choose(data_dir: &Path, timeout: Duration) -> Result<(Backend, String), StoreError> {
    let file_exists = data_dir.join(SECRET_FILE).exists();
    let index = Index::new(data_dir);
    // An index that does not parse is treated as naming secrets; the keyring store then
    // reports it as corrupt.
    let indexed = index.read().map_or(true, |entries| !entries.is_empty());

    match (file_exists, indexed) {
        (true, false) => Ok((
            Backend::File,
            format!("{SECRET_FILE} already exists in {}", data_dir.display()),
        )),
        (false, true) => match probe_keychain(timeout) {
            Ok(()) => Ok((
                Backend::Keyring,
                "the system keychain holds keygate's secrets and answers".into(),
            )),
            Err(reason) => Err(StoreError::KeychainGone {
                index: index.path().to_owned(),
                reason,
            }),
        },
        (true, true) => match probe_keychain(timeout) {
            Ok(()) => Ok((
                Backend::Keyring,
                format!(
                    "the system keychain answers (there is also a {SECRET_FILE}; set KEYGATE_SECRET_STORE=file to use it)"
                ),
            )),
            Err(reason) => Ok((Backend::File, format!("no usable keychain: {reason}"))),
        },
        (false, false) => match probe_keychain(timeout) {
            Ok(()) => Ok((Backend::Keyring, "the system keychain answers".into())),
            Err(reason) => Ok((Backend::File, format!("no usable keychain: {reason}"))),
        },
    }
}

/// Checks that the system keychain stores, returns and deletes an item within `timeout`,
/// using a throwaway item that no secret name can collide with. `Err` says why not.
///
/// On timeout the probe thread is left to finish (or hang) on its own: a keychain waiting
/// for a password prompt can block indefinitely.
pub fn probe_keychain(timeout: Duration) -> Result<(), String> {
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name("keychain-probe".into())
        .spawn(move || {
            let _ = tx.send(probe_once());
        })
        .map_err(|e| format!("cannot start the probe thread: {e}"))?;
    match rx.recv_timeout(timeout) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => Err(format!(
            "the keychain did not answer within {} (locked, or waiting for a prompt?)",
            humantime::format_duration(timeout)
        )),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err("the keychain probe crashed".into()),
    }
}

fn probe_once() -> Result<(), String> {
    let mut random = [0u8; 16];
    getrandom::fill(&mut random).map_err(|e| format!("no randomness for the probe: {e}"))?;
    // `:` is not allowed in secret names, so this item can never be a real secret.
    let user = format!("keygate-probe:{}", hex(&random[..8]));
    let token = hex(&random[8..]);

    let entry = ::keyring::Entry::new(KEYRING_SERVICE, &user).map_err(describe)?;
    entry
        .set_password(&token)
        .map_err(|e| format!("cannot store an item: {}", describe(e)))?;
    let read = entry.get_password();
    let deleted = entry.delete_credential();
    match read {
        Ok(back) if back == token => {}
        Ok(_) => return Err("the keychain returned a different value than stored".into()),
        Err(::keyring::Error::NoEntry) => {
            return Err("an item stored a moment ago was not found".into());
        }
        Err(e) => return Err(format!("cannot read an item back: {}", describe(e))),
    }
    deleted.map_err(|e| format!("cannot delete an item: {}", describe(e)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_existing_file_is_kept_without_probing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SECRET_FILE), b"KGV1").unwrap();
        // A zero timeout would fail any probe, so `File` here means no probe ran... or that
        // it failed; the reason tells which.
        let (backend, why) = choose(dir.path(), Duration::ZERO).unwrap();
        assert_eq!(backend, Backend::File);
        assert!(why.contains("already exists"), "{why}");
    }
}
