//! Instance identifiers.

use std::borrow::Borrow;
use std::fmt;

/// Identifies one instance of a machine (one order, one approval, one onboarding).
///
/// It is the caller's key: an order number, a UUID rendered as text, anything that is
/// unique among the instances of one machine. The library never invents or parses it.
///
/// ```
/// use statemachine::InstanceId;
///
/// let id = InstanceId::from("order-1001");
/// assert_eq!(id.as_str(), "order-1001");
/// assert_eq!(id, "order-1001");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct InstanceId(String);

impl InstanceId {
    /// Wraps a caller-chosen identifier.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Gives back the owned text.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for InstanceId {
    fn from(id: &str) -> Self {
        Self(id.to_owned())
    }
}

impl From<String> for InstanceId {
    fn from(id: String) -> Self {
        Self(id)
    }
}

impl From<&String> for InstanceId {
    fn from(id: &String) -> Self {
        Self(id.clone())
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
        self.0 == other
    }
}

impl PartialEq<&str> for InstanceId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}
