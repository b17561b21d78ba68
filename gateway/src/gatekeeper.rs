//! What approval channels may ask of the gate: decide a request, look at one, list and
//! revoke and extend grants — always as a named person, checked against the policy's approvers.

use keygate_proto::api::{GrantView, RequestView};
use keygate_proto::approval::{
    Approver, BoxFuture, Decider, Gatekeeper, Outcome, Refused, Verdict,
};
use keygate_proto::{GrantId, RequestId};

use crate::audit::{Actor, Event};
use crate::gate::{Gate, GateError, Selector};

fn actor(approver: &Approver) -> Actor {
    Actor::of(&Decider::Person(approver.clone()))
}

fn refused(e: GateError) -> Refused {
    match e {
        GateError::NotFound(_) => Refused::NotFound,
        GateError::AlreadyDecided(status) => Refused::AlreadyDecided(status),
        GateError::Forbidden(_) => Refused::NotAllowed,
        GateError::AtMaxTtl(why) => Refused::AtMaxTtl(why),
        other => Refused::Failed(other.to_string()),
    }
}

impl Gatekeeper for Gate {
    fn decide<'a>(
        &'a self,
        id: &'a RequestId,
        verdict: Verdict,
        approver: &'a Approver,
    ) -> BoxFuture<'a, Result<Outcome, Refused>> {
        Box::pin(async move {
            Gate::decide(self, id, verdict, &Decider::Person(approver.clone()))
                .await
                .map_err(refused)
        })
    }

    fn may_decide(&self, id: &RequestId, approver: &Approver) -> Result<(), Refused> {
        let r = self.request_state(id).ok_or(Refused::NotFound)?;
        let status = r.status();
        if status.is_final() {
            return Err(Refused::AlreadyDecided(status.as_str()));
        }
        if !r.approvers.allows(approver.id, &approver.roles) {
            self.audit().record_or_hold(&Event::Refused {
                who: &actor(approver),
                what: "decide",
                why: "not an approver for this request",
            });
            return Err(Refused::NotAllowed);
        }
        Ok(())
    }

    fn request(&self, id: &RequestId) -> Option<RequestView> {
        self.request_view(id)
    }

    fn grants_for(&self, approver: &Approver) -> Vec<GrantView> {
        self.live_grants()
            .iter()
            .filter(|g| g.approvers.allows(approver.id, &approver.roles))
            .map(|g| g.view())
            .collect()
    }

    fn refused(&self, approver: &Approver, what: &str, why: &str) {
        self.audit().record_or_hold(&Event::Refused {
            who: &actor(approver),
            what,
            why,
        });
    }

    fn revoke<'a>(
        &'a self,
        id: &'a GrantId,
        approver: &'a Approver,
    ) -> BoxFuture<'a, Result<GrantView, Refused>> {
        Box::pin(async move {
            let grant = self.live_grant(id).await.ok_or(Refused::NotFound)?;
            if !grant.approvers.allows(approver.id, &approver.roles) {
                self.audit().record_or_hold(&Event::Refused {
                    who: &actor(approver),
                    what: "revoke",
                    why: "not an approver for this grant",
                });
                return Err(Refused::NotAllowed);
            }
            Gate::revoke(self, &Selector::Grant(id.clone()), &actor(approver))
                .await
                .map_err(refused)?;
            Ok(grant.view())
        })
    }

    fn extend<'a>(
        &'a self,
        id: &'a GrantId,
        approver: &'a Approver,
    ) -> BoxFuture<'a, Result<GrantView, Refused>> {
        Box::pin(async move {
            let grant = self.live_grant(id).await.ok_or(Refused::NotFound)?;
            if !grant.approvers.allows(approver.id, &approver.roles) {
                self.audit().record_or_hold(&Event::Refused {
                    who: &actor(approver),
                    what: "extend",
                    why: "not an approver for this grant",
                });
                return Err(Refused::NotAllowed);
            }
            Gate::extend(self, id, None, &actor(approver))
                .await
                .map_err(refused)
        })
    }
}
