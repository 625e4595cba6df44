//! Instance identifiers.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Identifies one instance of a machine (one order, one approval, one onboarding).
///
/// It is the caller's key: an order number, a UUID rendered as text, anything that is
/// unique among the instances of one machine. The library never invents or parses it.
/// Cloning is cheap (a reference count), so audit records can carry it freely.
///
/// ```
/// use statemachine::InstanceId;
///
/// let id = InstanceId::from("order-1001");
/// assert_eq!(id.as_str(), "order-1001");
/// assert_eq!(id, "order-1001");
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstanceId(Arc<Box<str>>);

impl InstanceId {
    /// Wraps a caller-chosen identifier.
    pub fn new(id: impl AsRef<str>) -> Self {
        Self(Arc::new(Box::from(id.as_ref())))
    }

    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self.0, f)
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for InstanceId {
    fn from(id: &str) -> Self {
        Self(Arc::new(Box::from(id)))
    }
}

impl From<String> for InstanceId {
    fn from(id: String) -> Self {
        Self(Arc::new(id.into_boxed_str()))
    }
}

impl From<&String> for InstanceId {
    fn from(id: &String) -> Self {
        Self(Arc::new(Box::from(id.as_str())))
    }
}

impl From<&InstanceId> for InstanceId {
    fn from(id: &InstanceId) -> Self {
        id.clone()
    }
}

impl Borrow<str> for InstanceId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for InstanceId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for InstanceId {
    fn eq(&self, other: &str) -> bool {
        &**self.0 == other
    }
}

impl PartialEq<&str> for InstanceId {
    fn eq(&self, other: &&str) -> bool {
        &**self.0 == *other
    }
}

impl Serialize for InstanceId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for InstanceId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::from)
    }
}
