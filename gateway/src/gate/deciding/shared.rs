//! A decision on a cluster. The request is read from Redis (never this node's copy,
//! which may be behind), planned with the same typed transitions as on one node,
//! audited, and then applied by one script that takes it only if the request is still
//! at the version it was planned on — an approval's grant is made in the same step. Two
//! nodes deciding at once: one script wins; the other re-reads and plans again (an
//! approval may still count towards a quorum; a denial finds it decided). A line that
//! named a change Redis did not take is followed by a `decision_lost` line, so a node's
//! log never claims a decision the cluster did not make.

use std::sync::Arc;

use keygate_cluster::state::{Decided, Decision, NewGrant};
use keygate_proto::RequestId;
use keygate_proto::api::RequestView;

use super::Record;
use crate::audit::Event;
use crate::cluster::{Cluster, record};
use crate::gate::{Gate, GateError};
use crate::grants::Grant;
use crate::requests::{Request, Transition};

/// How many times a decision is planned again after losing a race before it gives up.
const ROUNDS: usize = 8;

impl Gate {
    /// [`Gate::transition`] on a cluster: plan from Redis, audit, apply in Redis, then
    /// in this node's copy.
    pub(super) async fn transition_shared(
        &self,
        c: &Cluster,
        id: &RequestId,
        record: Record,
        mut plan: impl FnMut(&Request) -> Result<Transition, GateError>,
    ) -> Result<(RequestView, Option<Arc<Grant>>), GateError> {
        for _ in 0..ROUNDS {
            let stored = c
                .shared
                .request(id.as_str())
                .await?
                .ok_or(GateError::NotFound("request"))?;
            let request = record::request_from(&stored.json)?;
            let mut t = plan(&request)?;
            match record {
                Record::Strict => self.audit.record(&t.event())?,
                Record::Reducing => self.audit.record_or_hold(&t.event()),
            }
            let mut next = request.clone();
            next.state = t.next.clone();
            let json = record::request_json(&next)?;
            let grant_json = t.grant.as_deref().map(record::grant_json).transpose()?;
            let grant = t
                .grant
                .as_deref()
                .zip(grant_json.as_deref())
                .map(|(g, json)| NewGrant {
                    id: g.id.as_str(),
                    json,
                    ends: g.expires_at(),
                });
            let decided = c
                .shared
                .decide(&Decision {
                    id: id.as_str(),
                    agent: request.agent.name.as_str(),
                    version: stored.version,
                    json: &json,
                    settles: next.status().is_final(),
                    grant,
                })
                .await;
            match decided {
                Ok(Decided::Applied(version)) => {
                    return Ok(self.applied(c, &request, next, version, &mut t));
                }
                Ok(Decided::Stale(_)) => self.lost(id, "another node changed the request first"),
                Ok(Decided::Missing) => {
                    self.lost(id, "the request is gone from the cluster");
                    return Err(GateError::NotFound("request"));
                }
                Err(e) => {
                    self.lost(id, "the cluster's Redis did not answer");
                    return Err(e.into());
                }
            }
        }
        Err(GateError::Conflict(
            "the request kept changing on other nodes; try again".into(),
        ))
    }

    /// Redis took the change: this node's copy follows.
    fn applied(
        &self,
        c: &Cluster,
        before: &Request,
        next: Request,
        version: u64,
        t: &mut Transition,
    ) -> (RequestView, Option<Arc<Grant>>) {
        let grant = t.grant.take();
        self.metrics.settled(before.created_at, &t.next);
        c.saw(&next.id, version);
        let view = next.view();
        self.requests.upsert(next);
        (view, grant)
    }

    fn lost(&self, id: &RequestId, why: &str) {
        self.audit
            .record_or_hold(&Event::DecisionLost { request: id, why });
    }
}
