//! The Approve… and Deny… forms (Discord modals). A press on `Approve…` or `Deny…` by one
//! of the request's approvers is answered at once — no defer first, as Discord requires —
//! with a form: a TTL (pre-filled with the request's) and an optional note, or a reason.
//! Its submit is decided like a press, through the gatekeeper (which checks the person
//! and the quorum again): approve with the typed TTL, capped at the rule's `max_ttl`, or
//! deny with the reason. Only a form this bot opened, for this person, on this message,
//! and not yet submitted, counts.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use keygate_proto::RequestId;
use keygate_proto::approval::{Approver, Gatekeeper, Refused, Verdict};
use twilight_model::application::interaction::Interaction;
use twilight_model::application::interaction::modal::{
    ModalInteractionComponent, ModalInteractionData,
};
use twilight_model::channel::message::component::{Component, Label, TextInput, TextInputStyle};
use twilight_model::http::interaction::InteractionResponse;
use twilight_util::builder::interaction_response::ModalBuilder;

use crate::approver::{anonymous, presser};
use crate::buttons::{self, Pressed};
use crate::client::Client;
use crate::messages::Messages;
use crate::reply::{ephemeral, respond};

/// The inputs' custom ids.
pub(crate) const TTL: &str = "kg:ttl";
pub(crate) const NOTE: &str = "kg:note";
pub(crate) const REASON: &str = "kg:reason";
const TTL_MAX: u16 = 32;
const NOTE_MAX: u16 = 200;
/// As long as a reason the daemon takes.
pub(crate) const REASON_MAX: u16 = 400;
/// Discord's limit on a modal title.
const TITLE_MAX: usize = 45;
/// How long an opened form may be submitted (an interaction token lives 15 minutes).
const OPEN_FOR: Duration = Duration::from_secs(15 * 60);
/// Forms remembered at most; the oldest are forgotten first.
const OPEN_MAX: usize = 1000;

/// Which form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Form {
    Approve,
    Deny,
}

/// The forms opened and not yet submitted: (person, the form's custom id) → the message
/// it was opened on and when.
#[derive(Debug, Default)]
pub(crate) struct Forms {
    open: Mutex<HashMap<OpenKey, (Option<u64>, Instant)>>,
}

/// A person's user id and a form's custom id.
type OpenKey = (u64, String);

impl Forms {
    fn opened(&self, user: u64, custom_id: String, message: Option<u64>) {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        open.retain(|_, (_, at)| at.elapsed() < OPEN_FOR);
        if open.len() >= OPEN_MAX
            && let Some(oldest) = open
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone())
        {
            open.remove(&oldest);
        }
        open.insert((user, custom_id), (message, Instant::now()));
    }

    /// Whether this person had this form open on this message; it is closed either way.
    fn take(&self, user: u64, custom_id: &str, message: Option<u64>) -> bool {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match open.remove(&(user, custom_id.to_owned())) {
            Some((on, at)) => on == message && at.elapsed() < OPEN_FOR,
            None => false,
        }
    }
}

fn input(custom_id: &str, style: TextInputStyle, max: u16) -> TextInput {
    TextInput {
        custom_id: custom_id.to_owned(),
        id: None,
        #[expect(deprecated, reason = "the label sits on the Label component instead")]
        label: None,
        max_length: Some(max),
        min_length: None,
        placeholder: None,
        required: Some(true),
        style,
        value: None,
    }
}

/// A text input under its label (a Label component, type 18).
fn labelled(label: &str, input: TextInput) -> Component {
    Component::Label(Label {
        component: Box::new(Component::TextInput(input)),
        description: None,
        id: None,
        label: label.to_owned(),
    })
}

/// The form for `id`: a modal (callback type 9).
pub(crate) fn modal(form: Form, id: &RequestId, ttl: Duration) -> InteractionResponse {
    let short: String = id.to_string().chars().take(16).collect();
    let (title, custom_id, components) = match form {
        Form::Approve => {
            let mut ttl_input = input(TTL, TextInputStyle::Short, TTL_MAX);
            ttl_input.value = Some(crate::escape::cut(
                &keygate_proto::duration::format(ttl),
                usize::from(TTL_MAX),
            ));
            let mut note = input(NOTE, TextInputStyle::Paragraph, NOTE_MAX);
            note.required = Some(false);
            (
                format!("Approve {short}"),
                buttons::approve_form(id),
                vec![
                    labelled("Grant lasts (e.g. 30m, 1h 30m)", ttl_input),
                    labelled("Note (optional)", note),
                ],
            )
        }
        Form::Deny => (
            format!("Deny {short}"),
            buttons::deny_form(id),
            vec![labelled(
                "Reason (the agent is told)",
                input(REASON, TextInputStyle::Paragraph, REASON_MAX),
            )],
        ),
    };
    ModalBuilder::new(custom_id, crate::escape::cut(&title, TITLE_MAX), components).build()
}

/// A press on `Approve…` or `Deny…`: the form, if this person may decide the request now;
/// otherwise the usual ephemeral refusal.
pub(crate) async fn open(
    c: &Client,
    forms: &Forms,
    gk: &dyn Gatekeeper,
    i: &Interaction,
    approver: &Approver,
    form: Form,
    id: &RequestId,
) {
    let view = match gk.may_decide(id, approver) {
        Ok(()) => gk.request(id),
        Err(refused) => {
            respond(
                c,
                i,
                &ephemeral(&crate::press::refusal(&refused, "request")),
            )
            .await;
            return;
        }
    };
    let Some(view) = view else {
        respond(
            c,
            i,
            &ephemeral(&crate::press::refusal(&Refused::NotFound, "request")),
        )
        .await;
        return;
    };
    let response = modal(form, id, Duration::from_secs(view.ttl_seconds));
    let custom_id = match form {
        Form::Approve => buttons::approve_form(id),
        Form::Deny => buttons::deny_form(id),
    };
    forms.opened(
        approver.id.0,
        custom_id,
        i.message.as_ref().map(|m| m.id.get()),
    );
    respond(c, i, &response).await;
}

/// The text inputs' values by custom id, in either form Discord sends them (action rows
/// or labels).
fn values(components: &[ModalInteractionComponent]) -> HashMap<String, String> {
    fn walk(c: &ModalInteractionComponent, out: &mut HashMap<String, String>) {
        match c {
            ModalInteractionComponent::ActionRow(row) => {
                for c in &row.components {
                    walk(c, out);
                }
            }
            ModalInteractionComponent::Label(label) => walk(&label.component, out),
            ModalInteractionComponent::TextInput(t) => {
                out.insert(t.custom_id.clone(), t.value.clone());
            }
            _ => {}
        }
    }
    let mut out = HashMap::new();
    for c in components {
        walk(c, &mut out);
    }
    out
}

/// What a submitted form asks for, or what to tell the person.
pub(crate) fn verdict(form: Form, data: &ModalInteractionData) -> Result<Verdict, String> {
    let values = values(&data.components);
    match form {
        Form::Approve => {
            let typed = values.get(TTL).map(String::as_str).unwrap_or_default();
            let ttl = keygate_proto::duration::parse(typed).map_err(|e| {
                format!(
                    "Not approved: {}; nothing changed.",
                    crate::escape::inert(&e.to_string(), 200)
                )
            })?;
            let note = values
                .get(NOTE)
                .map(|n| n.trim())
                .filter(|n| !n.is_empty())
                .map(|n| n.chars().take(usize::from(NOTE_MAX)).collect());
            Ok(Verdict::ApproveFor { ttl, note })
        }
        Form::Deny => {
            let reason = values.get(REASON).map(|r| r.trim()).unwrap_or_default();
            if reason.is_empty() {
                return Err("Not denied: a reason is needed; nothing changed.".into());
            }
            if reason.chars().count() > usize::from(REASON_MAX) {
                return Err(format!(
                    "Not denied: a reason is at most {REASON_MAX} characters; nothing changed."
                ));
            }
            Ok(Verdict::Deny {
                reason: Some(reason.to_owned()),
            })
        }
    }
}

/// A submitted form (interaction type 5).
pub(crate) async fn submitted(
    c: &Client,
    messages: &Messages,
    forms: &Forms,
    gk: &dyn Gatekeeper,
    i: &Interaction,
    data: &ModalInteractionData,
) {
    let approver = match presser(c, i) {
        Ok(a) => a,
        Err(why) => {
            gk.refused(&anonymous(i), "form", why);
            respond(c, i, &ephemeral(&format!("Not counted: {why}."))).await;
            return;
        }
    };
    let (form, id) = match buttons::parse(&data.custom_id) {
        Some(Pressed::ApproveForm(id)) => (Form::Approve, id),
        Some(Pressed::DenyForm(id)) => (Form::Deny, id),
        _ => {
            gk.refused(&approver, "form", "unknown form");
            respond(
                c,
                i,
                &ephemeral("Not counted: keygate does not know this form."),
            )
            .await;
            return;
        }
    };
    let message = i.message.as_ref().map(|m| m.id.get());
    if !forms.take(approver.id.0, &data.custom_id, message) {
        gk.refused(
            &approver,
            "form",
            "a form keygate did not open for this person",
        );
        respond(
            c,
            i,
            &ephemeral("Not counted: keygate did not open this form for you here."),
        )
        .await;
        return;
    }
    match verdict(form, data) {
        Ok(verdict) => crate::press::decide(c, messages, gk, i, &approver, &id, verdict).await,
        Err(why) => respond(c, i, &ephemeral(&why)).await,
    }
}

#[cfg(test)]
mod tests {
    use twilight_model::application::interaction::modal::{
        ModalInteractionLabel, ModalInteractionTextInput,
    };

    use super::*;

    fn submitted(form: Form, values: &[(&str, &str)]) -> ModalInteractionData {
        let id = RequestId::random();
        ModalInteractionData {
            custom_id: match form {
                Form::Approve => buttons::approve_form(&id),
                Form::Deny => buttons::deny_form(&id),
            },
            components: values
                .iter()
                .zip(1..)
                .map(|((k, v), n)| {
                    ModalInteractionComponent::Label(ModalInteractionLabel {
                        id: n * 2,
                        component: Box::new(ModalInteractionComponent::TextInput(
                            ModalInteractionTextInput {
                                custom_id: (*k).to_owned(),
                                id: n * 2 + 1,
                                value: (*v).to_owned(),
                            },
                        )),
                    })
                })
                .collect(),
            resolved: None,
        }
    }

    #[test]
    fn a_typed_ttl_approves_for_it_and_garbage_changes_nothing() {
        let d = submitted(Form::Approve, &[(TTL, " 1h 30m "), (NOTE, "")]);
        assert_eq!(
            verdict(Form::Approve, &d),
            Ok(Verdict::ApproveFor {
                ttl: Duration::from_secs(5400),
                note: None,
            })
        );
        for bad in ["soon", "", "0s", "400d"] {
            let d = submitted(Form::Approve, &[(TTL, bad)]);
            assert!(verdict(Form::Approve, &d).is_err(), "{bad}");
        }
        assert!(verdict(Form::Approve, &submitted(Form::Approve, &[])).is_err());
    }

    #[test]
    fn a_reason_is_needed_and_at_most_400() {
        let d = submitted(Form::Deny, &[(REASON, " use staging ")]);
        assert_eq!(
            verdict(Form::Deny, &d),
            Ok(Verdict::Deny {
                reason: Some("use staging".into())
            })
        );
        for bad in ["", "   ", &"x".repeat(401)] {
            assert!(verdict(Form::Deny, &submitted(Form::Deny, &[(REASON, bad)])).is_err());
        }
    }

    #[test]
    fn the_modals_are_within_discords_limits() {
        let id = RequestId::random();
        for form in [Form::Approve, Form::Deny] {
            let m = modal(form, &id, Duration::from_secs(900));
            let data = m.data.expect("data");
            assert!(
                data.title
                    .as_deref()
                    .is_some_and(|t| t.chars().count() <= TITLE_MAX)
            );
            assert!(data.custom_id.as_deref().is_some_and(|c| c.len() <= 100));
            let n = data.components.as_ref().map_or(0, Vec::len);
            assert!((1..=5).contains(&n));
        }
    }

    #[test]
    fn only_an_open_form_for_that_person_and_message_counts_once() {
        let forms = Forms::default();
        forms.opened(1, "kg:am:x".into(), Some(9));
        assert!(!forms.take(2, "kg:am:x", Some(9)));
        assert!(!forms.take(1, "kg:dm:x", Some(9)));
        assert!(forms.take(1, "kg:am:x", Some(9)));
        assert!(!forms.take(1, "kg:am:x", Some(9)));
        forms.opened(1, "kg:am:x".into(), Some(9));
        assert!(!forms.take(1, "kg:am:x", Some(8)));
    }
}
