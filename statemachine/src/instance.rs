//! A machine's identity and audit context behind one pointer.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::mem::ManuallyDrop;
use std::sync::{Arc, LazyLock};

use crate::audit::Registry;
use crate::audit::recorder::{Place, Recorder};
use crate::{Audit, InstanceId};

/// The instance's identifier and its audit context, shared behind one reference count.
///
/// Generated machines hold this instead of an [`InstanceId`] and an [`Audit`] side by side,
/// so a machine whose shared data and state carry nothing is two machine words (this
/// pointer and the sequence number). Rust passes such a value in registers, as it does a
/// hand-written struct with an id and a counter; with a third word it would go through
/// memory on every transition (see `BENCHMARKS.md`).
///
/// The first change to the audit context counts the instance in its machine type's
/// [`Registry`], and dropping it uncounts it, so a transition decides whether anyone
/// listens from the registry alone. Cloning shares the context; [`audit_mut`] copies it
/// first when it is shared, so a clone's observers are its own. Equality and hashing
/// look at the identifier only: the audit context is not part of the machine's value.
///
/// [`audit_mut`]: Self::audit_mut
// Dropped by one out-of-line call, with nothing else to drop: the drop glue of a
// machine's `AnyOrder` is then the same single call in every variant, which the optimiser
// folds into one and inlines. With the reference count's decrement inline, every variant
// kept its own copy, the glue stayed a function taking the machine's address, and a loop
// over `fire` that dropped its machine afterwards kept the machine in memory on every
// event (about 1 ns of 3; see `benches/NOTES.md`). The `Option` is `Some` from `new` until
// `drop`; it exists so that `drop` can take the reference out without `unsafe`.
#[derive(Clone)]
pub struct Instance(ManuallyDrop<Option<Arc<Header>>>);

struct Header {
    id: InstanceId,
    audit: Audit,
    registry: &'static Registry,
    /// Whether this header is counted in `registry` (its audit context may be set).
    counted: bool,
}

impl Clone for Header {
    fn clone(&self) -> Self {
        if self.counted {
            self.registry.count_instance();
        }
        Self {
            id: self.id.clone(),
            audit: self.audit.clone(),
            registry: self.registry,
            counted: self.counted,
        }
    }
}

impl Drop for Header {
    fn drop(&mut self) {
        if self.counted {
            self.registry.uncount_instance();
        }
    }
}

/// What an instance reads between its `drop` and the end of that `drop` (nothing reads
/// it then; it is here so that no accessor needs a panic).
static VACANT: LazyLock<Header> = LazyLock::new(|| Header {
    id: InstanceId::new(""),
    audit: Audit::default(),
    registry: &VACANT_REGISTRY,
    counted: false,
});
static VACANT_REGISTRY: Registry = Registry::new();

impl Drop for Instance {
    #[inline(always)]
    fn drop(&mut self) {
        release(self.0.take());
    }
}

/// Lets go of an instance's header: by value, so that the machine's address is not taken.
#[inline(never)]
fn release(header: Option<Arc<Header>>) {
    drop(header);
}

impl Instance {
    /// An instance of the machine type whose observers are `registry`, with an empty
    /// audit context.
    #[inline]
    pub fn new(id: InstanceId, registry: &'static Registry) -> Self {
        Self(ManuallyDrop::new(Some(Arc::new(Header {
            id,
            audit: Audit::default(),
            registry,
            counted: false,
        }))))
    }

    /// The shared header.
    #[inline(always)]
    fn header(&self) -> &Header {
        match &*self.0 {
            Some(header) => header,
            None => &VACANT,
        }
    }

    /// The identifier.
    #[inline]
    pub fn id(&self) -> &InstanceId {
        &self.header().id
    }

    /// The audit context.
    #[inline]
    pub fn audit(&self) -> &Audit {
        &self.header().audit
    }

    /// The audit context, unshared first if another machine holds it too. From now on
    /// the instance counts as one that may be listened to.
    #[inline]
    pub fn audit_mut(&mut self) -> &mut Audit {
        let shared = self.0.get_or_insert_with(|| Arc::new(VACANT.clone()));
        let header = Arc::make_mut(shared);
        if !header.counted {
            header.registry.count_instance();
            header.counted = true;
        }
        &mut header.audit
    }

    /// Whether this instance is counted in its registry (its audit context may be set).
    #[inline(always)]
    pub(crate) fn counted(&self) -> bool {
        self.header().counted
    }

    /// The identifier, without the audit context.
    #[inline]
    pub fn into_id(self) -> InstanceId {
        self.header().id.clone()
    }
}

impl fmt::Debug for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instance")
            .field("id", self.id())
            .field("audit", self.audit())
            .finish()
    }
}

impl PartialEq for Instance {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}

impl Eq for Instance {}

impl Hash for Instance {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id().hash(state);
    }
}

/// The fields of a generated typed machine (`Order<S>` is a newtype around
/// `Fields<OrderData, S>`): the instance, the sequence number, the shared data and the
/// state's value.
///
/// The fields are private to this crate, so not even the module that declares the machine
/// can write `order.seq = 999` or swap a state's value: the generated code reads them
/// through these methods and builds a machine in a new state only through
/// [`from_parts`](Self::from_parts), which the generated transitions, `new`, `restore` and
/// migrations call. The newtype adds nothing to the size: an `Order<S>` without data is
/// still two machine words.
// `repr(C)`, with the instance between the sequence number and the data: a transition
// adds one to the sequence number and a hook often adds to a counter in the data, and
// with the two side by side the optimiser packs both additions into one 16-byte vector
// store that the next move reads back as two 8-byte loads (a failed store-to-load
// forward, about 3x a hand-written move when each machine goes through memory).
#[repr(C)]
pub struct Fields<D, S> {
    seq: u64,
    instance: Instance,
    data: D,
    state: S,
}

impl<D, S> Fields<D, S> {
    /// A machine's fields.
    #[inline(always)]
    pub fn from_parts(instance: Instance, seq: u64, data: D, state: S) -> Self {
        Self {
            instance,
            seq,
            data,
            state,
        }
    }

    /// The fields, taken apart.
    #[inline(always)]
    pub fn into_parts(self) -> (Instance, u64, D, S) {
        (self.instance, self.seq, self.data, self.state)
    }

    /// The instance's identifier.
    #[inline(always)]
    pub fn id(&self) -> &InstanceId {
        self.instance.id()
    }

    /// The sequence number.
    #[inline(always)]
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The shared data.
    #[inline(always)]
    pub fn data(&self) -> &D {
        &self.data
    }

    /// The state's value.
    #[inline(always)]
    pub fn state(&self) -> &S {
        &self.state
    }

    /// The audit context.
    #[inline(always)]
    pub fn audit(&self) -> &Audit {
        self.instance.audit()
    }

    /// Whether anyone might listen to a transition of this machine, whose type's
    /// observers are `registry`: one load when nobody listens anywhere, two when only
    /// other instances of the type are observed.
    #[inline(always)]
    pub fn listened(&self, registry: &Registry) -> bool {
        registry.may_listen_to(&self.instance)
    }

    /// The audit context, to change.
    #[inline(always)]
    pub fn audit_mut(&mut self) -> &mut Audit {
        self.instance.audit_mut()
    }

    /// What every state's machine holds alike: the instance, the sequence number and
    /// the shared data. The dynamic view's accessors (`id`, `seq`, `data`, `audit`)
    /// read them through one match on the state, not a match each.
    #[inline(always)]
    pub fn shared(&self) -> (&Instance, u64, &D) {
        (&self.instance, self.seq, &self.data)
    }

    /// A bare move into `target`: a transition with no guard, action or hook, between
    /// states without data, recorded (with `payload`) for whoever listens to `registry`.
    ///
    /// The typed method of every such transition is this call, so a table's bare
    /// transitions share one function instead of each compiling its own recording path
    /// and step. Nothing is set up for the recording on the path where nobody listens.
    /// The recording path reads only the instance's header (on the heap) and the
    /// sequence number, and returns nothing: a recording path that took the machine and
    /// returned it moved made the compiler keep the machine in memory on both paths.
    #[inline(always)]
    pub fn bare_move<T, P: serde::Serialize>(
        self,
        registry: &'static Registry,
        place: &'static Place,
        to: &'static str,
        payload: &P,
        target: T,
    ) -> Fields<D, T> {
        if self.listened(registry) {
            Recorder::moved(
                self.instance.audit(),
                registry,
                *place,
                self.instance.id(),
                self.seq,
                to,
                payload,
            );
        }
        self.retag(target)
    }

    /// The same machine in state `target`, one transition later.
    #[inline(always)]
    fn retag<T>(self, target: T) -> Fields<D, T> {
        Fields {
            seq: self.seq + 1,
            instance: self.instance,
            data: self.data,
            state: target,
        }
    }
}

// What `#[derive(..)]` on a generated machine needs; written out so that each holds
// exactly when the data and the state have it (a derive would ask the same).

impl<D: Clone, S: Clone> Clone for Fields<D, S> {
    fn clone(&self) -> Self {
        Self {
            instance: self.instance.clone(),
            seq: self.seq,
            data: self.data.clone(),
            state: self.state.clone(),
        }
    }
}

impl<D: fmt::Debug, S: fmt::Debug> fmt::Debug for Fields<D, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fields")
            .field("instance", &self.instance)
            .field("seq", &self.seq)
            .field("data", &self.data)
            .field("state", &self.state)
            .finish()
    }
}

impl<D: PartialEq, S: PartialEq> PartialEq for Fields<D, S> {
    fn eq(&self, other: &Self) -> bool {
        self.instance == other.instance
            && self.seq == other.seq
            && self.data == other.data
            && self.state == other.state
    }
}

impl<D: Eq, S: Eq> Eq for Fields<D, S> {}

impl<D: Hash, S: Hash> Hash for Fields<D, S> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.instance.hash(state);
        self.seq.hash(state);
        self.data.hash(state);
        self.state.hash(state);
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

    fn registry() -> &'static Registry {
        Box::leak(Box::new(Registry::new()))
    }

    #[test]
    fn a_clone_gets_its_own_audit_context_when_changed() {
        let registry = registry();
        let mut first = Instance::new(InstanceId::from("a"), registry);
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
    fn an_instance_is_counted_while_its_audit_context_may_be_set() {
        let registry = registry();
        let mut quiet = Instance::new(InstanceId::from("quiet"), registry);
        let _copy = quiet.clone();
        assert_eq!(registry.counted_instances(), 0, "nothing changed yet");

        let mut observed = Instance::new(InstanceId::from("observed"), registry);
        observed.audit_mut().observe(Arc::new(Nobody));
        observed.audit_mut().set_actor("ann");
        assert_eq!(
            registry.counted_instances(),
            1,
            "counted once, however often changed"
        );

        // A clone shares the header: still one. Changing the clone unshares it: two.
        let mut clone = observed.clone();
        assert_eq!(registry.counted_instances(), 1);
        clone.audit_mut().set_actor("bob");
        assert_eq!(registry.counted_instances(), 2);

        drop(observed);
        assert_eq!(registry.counted_instances(), 1);
        drop(clone);
        assert_eq!(registry.counted_instances(), 0, "dropping uncounts");

        quiet.audit_mut();
        assert_eq!(
            registry.counted_instances(),
            1,
            "audit_mut alone counts: it may set"
        );
        drop(quiet);
        assert_eq!(registry.counted_instances(), 0);
    }

    #[test]
    fn counting_is_exact_across_threads() {
        let registry = registry();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                std::thread::spawn(move || {
                    for i in 0..500 {
                        let mut instance =
                            Instance::new(InstanceId::new(format!("{t}-{i}")), registry);
                        instance.audit_mut().set_actor("x");
                        let mut clone = instance.clone();
                        if i % 2 == 0 {
                            clone.audit_mut().set_actor("y");
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(registry.counted_instances(), 0);
    }

    #[test]
    fn into_id_keeps_the_identifier_shared_or_not() {
        let registry = registry();
        let only = Instance::new(InstanceId::from("a"), registry);
        assert_eq!(only.into_id(), "a");
        let shared = Instance::new(InstanceId::from("b"), registry);
        let other = shared.clone();
        assert_eq!(shared.into_id(), "b");
        assert_eq!(other.id(), "b");
    }

    #[test]
    fn a_machine_without_data_is_two_words() {
        assert_eq!(
            size_of::<Fields<(), ()>>(),
            size_of::<Instance>() + size_of::<u64>()
        );
    }

    #[test]
    fn an_instance_is_one_pointer() {
        // The pointer's null is the released instance (see `Drop`), so an
        // `Option<Instance>` takes a second word: no generated type holds one.
        assert_eq!(size_of::<Instance>(), size_of::<usize>());
    }

    #[test]
    fn dropping_the_last_machine_of_an_instance_frees_its_header() {
        let registry = registry();
        let mut first = Instance::new(InstanceId::from("a"), registry);
        first.audit_mut();
        let header = Arc::downgrade(first.0.as_ref().expect("held until dropped"));
        let second = first.clone();
        drop(first);
        assert_eq!(second.id().as_str(), "a", "a clone still holds the header");
        assert_eq!(registry.counted_instances(), 1);
        drop(second);
        assert!(header.upgrade().is_none(), "the header is freed");
        assert_eq!(registry.counted_instances(), 0, "and uncounted");
    }
}
