//! `[contacts.NAME]` and each check's `contacts`: resolved here into who
//! is told about each instance (`Audience`), once per load, so that the
//! plan only looks an instance up. An instance no contact covers is told
//! to `emails.to` and every notifier, as before contacts existed.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::raw::RawConfig;
use super::validate::Validator;
use crate::check::Instance;
use crate::pattern::Pattern;

/// Who is told about an instance: the contacts (by name; empty for
/// everyone), their mailboxes, and the names of their notifiers (each
/// once). The plan mails each contact apart (`tell::per_contact`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Audience {
    pub(crate) contacts: Vec<String>,
    pub(crate) to: Vec<String>,
    pub(crate) notify: Vec<String>,
}

/// A contact as validated: its mailboxes, notifiers and patterns.
type Known = (Vec<String>, Vec<String>, Vec<Pattern>);

impl Validator {
    /// Each instance's audience, for those a contact covers, and each
    /// contact's mailboxes (for its report).
    pub(super) fn contacts(
        &mut self,
        raw: &RawConfig,
        named: &BTreeMap<String, Vec<String>>,
        instances: &[Arc<Instance>],
    ) -> (BTreeMap<String, Audience>, BTreeMap<String, Vec<String>>) {
        // Contact name → (to, notify, patterns).
        let mut known: BTreeMap<&str, Known> = BTreeMap::new();
        for (name, contact) in &raw.contacts {
            let at = format!("contacts.{name}");
            self.name(&at, name);
            let to: Vec<String> = (contact.to.iter().flatten())
                .map(|m| self.contact_mailbox(&format!("{at}.to"), m))
                .collect();
            let notify: Vec<String> = contact.notify.clone().unwrap_or_default();
            for n in &notify {
                if !raw.notify.contains_key(n) {
                    self.bad(
                        &format!("{at}.notify"),
                        format!("{n:?}: no [notify.{n}] in the configuration"),
                    );
                }
            }
            if to.is_empty() && notify.is_empty() {
                self.bad(
                    &at,
                    "a contact needs `to` (mailboxes) or `notify` (names of [notify.NAME]), or both",
                );
            }
            let mut patterns = Vec::new();
            for p in contact.instances.iter().flatten() {
                match Pattern::new(p) {
                    Ok(p) => patterns.push(p),
                    Err(e) => self.bad(&format!("{at}.instances"), e),
                }
            }
            known.insert(name, (to, notify, patterns));
        }
        for (check, names) in named {
            for name in names {
                if !known.contains_key(name.as_str()) {
                    self.bad(
                        &format!("checks.{check}.contacts"),
                        format!("{name:?}: no [contacts.{name}] in the configuration"),
                    );
                }
            }
        }
        let mut audiences = BTreeMap::new();
        for instance in instances {
            let named = named.get(&instance.check).map_or(&[][..], Vec::as_slice);
            let mut contacts: Vec<String> = known
                .iter()
                .filter(|(name, (_, _, patterns))| {
                    named.iter().any(|n| n == *name)
                        || patterns.iter().any(|p| p.matches(&instance.id))
                })
                .map(|(name, _)| name.to_string())
                .collect();
            contacts.dedup();
            if contacts.is_empty() {
                continue;
            }
            let mut to: Vec<String> = Vec::new();
            let mut notify: Vec<String> = Vec::new();
            for name in &contacts {
                let (t, n, _) = &known[name.as_str()];
                to.extend(
                    t.iter()
                        .filter(|m| !to.contains(m))
                        .cloned()
                        .collect::<Vec<_>>(),
                );
                notify.extend(
                    n.iter()
                        .filter(|m| !notify.contains(m))
                        .cloned()
                        .collect::<Vec<_>>(),
                );
            }
            audiences.insert(
                instance.id.clone(),
                Audience {
                    contacts,
                    to,
                    notify,
                },
            );
        }
        let mailboxes = known
            .iter()
            .map(|(name, (to, _, _))| (name.to_string(), to.clone()))
            .collect();
        (audiences, mailboxes)
    }
}
