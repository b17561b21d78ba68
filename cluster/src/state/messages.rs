//! Which message shows a request, per approval channel: `{keygate}:msg:ID`, a hash of
//! channel name → message id, that Redis drops `keep` after it was last written. The
//! node that runs a channel records each message it posts; a node that takes the
//! channel over reads them back and keeps editing those messages.

use std::time::Duration;

use super::{Shared, key, millis};
use crate::ClusterError;

fn messages_key(request: &str) -> String {
    key(&format!("msg:{request}"))
}

impl Shared {
    /// `message` on `channel` shows request `request`; kept for `keep` (the whole
    /// record, every channel's, from this write on). A message id of 0 (no Discord
    /// message has it) or a zero `keep` is refused and changes nothing.
    pub async fn set_message(
        &self,
        request: &str,
        channel: &str,
        message: u64,
        keep: Duration,
    ) -> Result<(), ClusterError> {
        if message == 0 {
            return Err(ClusterError::Invalid(format!(
                "request {request}: message id 0 on {channel} is no message"
            )));
        }
        let keep = millis(keep);
        if keep == 0 {
            return Err(ClusterError::Invalid(format!(
                "request {request}: a message kept for no time is not kept"
            )));
        }
        let mut conn = self.conn()?;
        let key = messages_key(request);
        redis::pipe()
            .atomic()
            .cmd("HSET")
            .arg(&key)
            .arg(channel)
            .arg(message)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(keep)
            .ignore()
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// Every channel's message for request `request`, as (channel, message id), by
    /// channel name; none once the record expired (or was never written).
    pub async fn messages(&self, request: &str) -> Result<Vec<(String, u64)>, ClusterError> {
        let mut conn = self.conn()?;
        let all: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(messages_key(request))
            .query_async(&mut conn)
            .await?;
        let mut out = all
            .into_iter()
            .map(|(channel, id)| match id.parse::<u64>() {
                Ok(id) if id != 0 => Ok((channel, id)),
                _ => Err(ClusterError::Protocol(format!(
                    "request {request}: {channel}'s message id is {id:?}"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.sort();
        Ok(out)
    }
}
