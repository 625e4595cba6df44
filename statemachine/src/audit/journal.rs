//! [`Journal`]: an observer that keeps every record.

use std::sync::Mutex;

use super::{AuditRecord, Observer};

/// An observer that keeps every record it sees, with payloads.
///
/// ```
/// use std::sync::Arc;
/// use statemachine::{Journal, state_machine};
///
/// state_machine! {
///     machine Switch {
///         version 1;
///         initial state Off;
///         state On;
///         event toggle;
///         Off + toggle => On;
///         On + toggle => Off;
///     }
/// }
///
/// let journal = Arc::new(Journal::default());
/// let mut switch = Switch::new("hall");
/// switch.audit_mut().observe(journal.clone());
/// let switch = switch.toggle().toggle();
/// let records = journal.take();
/// assert_eq!(records.len(), 2);
/// assert_eq!(records[1].seq, 2);
/// assert_eq!(records[1].to.as_deref(), Some("Off"));
/// # let _ = switch;
/// ```
#[derive(Debug, Default)]
pub struct Journal {
    records: Mutex<Vec<AuditRecord>>,
    /// Why an event's payload could not be recorded, if one could not: a repository
    /// refuses to write records that could not be replayed.
    unrecorded: Mutex<Option<crate::encode::EncodeError>>,
    /// When the instance last took a transition (as stored, then as written), for the
    /// time-in-state metric. Kept only with feature `metrics`.
    moved_at: Mutex<Option<std::time::SystemTime>>,
}

impl Journal {
    /// Takes the records seen so far, oldest first, leaving the journal empty.
    pub fn take(&self) -> Vec<AuditRecord> {
        std::mem::take(&mut *self.records.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Puts records back in front of the ones waiting (after a failed write).
    pub(crate) fn restore(&self, mut records: Vec<AuditRecord>) {
        let mut waiting = self.records.lock().unwrap_or_else(|p| p.into_inner());
        records.append(&mut waiting);
        *waiting = records;
    }

    /// Notes that an event's payload could not be recorded.
    pub(crate) fn unrecorded(&self, why: crate::encode::EncodeError) {
        self.unrecorded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(why);
    }

    /// Takes the note left by [`unrecorded`](Self::unrecorded), if any.
    pub(crate) fn take_unrecorded(&self) -> Option<crate::encode::EncodeError> {
        self.unrecorded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// When the instance last took a transition, if known.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn moved_at(&self) -> Option<std::time::SystemTime> {
        *self.moved_at.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes when the instance last took a transition.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn set_moved_at(&self, at: std::time::SystemTime) {
        *self.moved_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(at);
    }

    /// How many records are waiting.
    pub fn len(&self) -> usize {
        self.records.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no record is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Observer for Journal {
    fn observe(&self, record: &AuditRecord) {
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(record.clone());
    }

    fn wants_payloads(&self) -> bool {
        true
    }
}
