//! A machine's identity and audit context behind one pointer.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::{Audit, InstanceId};

/// The instance's identifier and its audit context, shared behind one reference count.
///
/// Generated machines hold this instead of an [`InstanceId`] and an [`Audit`] side by side,
/// so a machine whose shared data and state carry nothing is two machine words (this
/// pointer and the sequence number). Rust passes such a value in registers, as it does a
/// hand-written struct with an id and a counter; with a third word it would go through
/// memory on every transition (see `BENCHMARKS.md`).
///
/// Cloning shares the context; [`audit_mut`](Self::audit_mut) copies it first when it is
/// shared, so a clone's observers are its own. Equality and hashing look at the
/// identifier only: the audit context is not part of the machine's value.
#[derive(Clone)]
pub struct Instance(Arc<Header>);

#[derive(Clone)]
struct Header {
    id: InstanceId,
    audit: Audit,
}

impl Instance {
    /// An instance with an empty audit context.
    #[inline]
    pub fn new(id: InstanceId) -> Self {
        Self(Arc::new(Header {
            id,
            audit: Audit::default(),
        }))
    }

    /// The identifier.
    #[inline]
    pub fn id(&self) -> &InstanceId {
        &self.0.id
    }

    /// The audit context.
    #[inline]
    pub fn audit(&self) -> &Audit {
        &self.0.audit
    }

    /// The audit context, unshared first if another machine holds it too.
    #[inline]
    pub fn audit_mut(&mut self) -> &mut Audit {
        &mut Arc::make_mut(&mut self.0).audit
    }

    /// The identifier, without the audit context.
    #[inline]
    pub fn into_id(self) -> InstanceId {
        match Arc::try_unwrap(self.0) {
            Ok(header) => header.id,
            Err(shared) => shared.id.clone(),
        }
    }
}

impl fmt::Debug for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instance")
            .field("id", &self.0.id)
            .field("audit", &self.0.audit)
            .finish()
    }
}

impl PartialEq for Instance {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for Instance {}

impl Hash for Instance {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.id.hash(state);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{AuditRecord, Observer};

    struct Nobody;
    impl Observer for Nobody {
        fn observe(&self, _: &AuditRecord) {}
    }

    #[test]
    fn a_clone_gets_its_own_audit_context_when_changed() {
        let mut first = Instance::new(InstanceId::from("a"));
        first.audit_mut().set_actor("ann");
        let mut second = first.clone();
        second
            .audit_mut()
            .set_actor("bob")
            .observe(Arc::new(Nobody));
        assert_eq!(first.audit().caller().0.as_deref(), Some("ann"));
        assert_eq!(second.audit().caller().0.as_deref(), Some("bob"));
        assert_eq!(first.audit().observers().len(), 0);
        assert_eq!(second.audit().observers().len(), 1);
        assert_eq!(first, second, "equality ignores the audit context");
    }

    #[test]
    fn into_id_keeps_the_identifier_shared_or_not() {
        let only = Instance::new(InstanceId::from("a"));
        assert_eq!(only.into_id(), "a");
        let shared = Instance::new(InstanceId::from("b"));
        let other = shared.clone();
        assert_eq!(shared.into_id(), "b");
        assert_eq!(other.id(), "b");
    }

    #[test]
    fn an_instance_is_one_pointer() {
        assert_eq!(size_of::<Instance>(), size_of::<usize>());
        assert_eq!(size_of::<Option<Instance>>(), size_of::<usize>());
    }
}
