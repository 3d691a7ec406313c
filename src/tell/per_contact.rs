//! Digests per contact: a flush's due switches in, each contact's mails
//! out. A contact gets one digest (or one mail each) of all its own
//! instances and only those; an instance several contacts cover is in
//! each one's mail, in the thread that contact got; the same mail due to
//! several contacts goes once, to all their mailboxes.

use std::collections::BTreeMap;

use super::{Flush, Tell};
use crate::config::Audience;
use crate::digest::Outgoing;
use crate::state::{Event, Transition};

/// The mails of `events`, per contact: each contact gets one digest (or
/// one mail each) of its own instances, an instance with two contacts
/// being in both contacts' mails, each in the thread that contact got;
/// those no contact covers go to everyone. The same mail due to several
/// contacts (one instance's own alert, or digests listing the same
/// switches in the same threads) goes once, to all their mailboxes: a
/// mailbox two contacts share gets it once.
pub(super) fn mails(flush: &Flush, events: Vec<Event>) -> Vec<Tell> {
    // None (no contact) first, then contacts by name.
    let mut groups: BTreeMap<Option<&str>, Vec<Event>> = BTreeMap::new();
    for event in events {
        let audience = flush.audience(&event.id);
        if audience.contacts.is_empty() {
            groups.entry(None).or_default().push(event);
            continue;
        }
        let state = flush.seen.get(event.id.as_str()).map(|s| s.state);
        for contact in &audience.contacts {
            let threaded = match state {
                Some(state) => state.threaded(&event, Some(contact)),
                None => event.clone(),
            };
            groups.entry(Some(contact)).or_default().push(threaded);
        }
    }
    // Each distinct mail, with the contacts it goes to, in order.
    let mut mails: Vec<(String, Outgoing, Vec<Option<&str>>)> = Vec::new();
    for (contact, events) in groups {
        for outgoing in crate::digest::plan(events, flush.digest_over, flush.seen.len()) {
            let key = same_mail(&outgoing);
            match mails.iter_mut().find(|(k, ..)| *k == key) {
                Some((_, _, contacts)) => contacts.push(contact),
                None => mails.push((key, outgoing, vec![contact])),
            }
        }
    }
    mails
        .into_iter()
        .map(|(_, outgoing, contacts)| {
            let mut audience = Audience {
                contacts: Vec::new(),
                to: Vec::new(),
                notify: Vec::new(),
            };
            for contact in contacts {
                let to = match contact {
                    Some(name) => {
                        audience.contacts.push(name.to_string());
                        flush.mailboxes.get(name).map_or(&[][..], Vec::as_slice)
                    }
                    None => &flush.everyone.to[..],
                };
                for mailbox in to {
                    if !audience.to.contains(mailbox) {
                        audience.to.push(mailbox.clone());
                    }
                }
            }
            Tell::Mail(outgoing, audience)
        })
        .collect()
}

/// What makes two contacts' mails the same mail: the same switches, in
/// the same threads.
fn same_mail(outgoing: &Outgoing) -> String {
    let one = |e: &Event| {
        let kind = match e.transition {
            Transition::Failing => "problem",
            Transition::Recovered { .. } => "ok",
            Transition::Unmonitored { .. } => "gone",
        };
        format!("{kind} {:?} {:?}", e.id, e.reply_to)
    };
    match outgoing {
        Outgoing::One(e) => format!("one {}", one(e)),
        Outgoing::Digest(d) => {
            let events: Vec<String> = d.events.iter().map(one).collect();
            format!("digest {}", events.join(" "))
        }
    }
}
