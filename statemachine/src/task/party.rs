//! The values a table may take people and groups from: fields of the data or the state,
//! or what a function returns.

use std::collections::{BTreeSet, HashSet};

/// A value that names at most one person: what `assignee data.field;` and `escalate ..
/// to assignee ..;` read.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot name a person",
    label = "a task's assignee is read from a `String`, a `&str`, or an `Option` of one",
    note = "give the data a field of type `String` or `Option<String>` for the assignee"
)]
pub trait Person {
    /// The person, or `None` when the value names nobody (an empty name is nobody).
    fn person(&self) -> Option<String>;
}

impl Person for str {
    fn person(&self) -> Option<String> {
        (!self.is_empty()).then(|| self.to_owned())
    }
}

impl Person for String {
    fn person(&self) -> Option<String> {
        self.as_str().person()
    }
}

impl<T: Person + ?Sized> Person for &T {
    fn person(&self) -> Option<String> {
        (**self).person()
    }
}

impl<T: Person> Person for Option<T> {
    fn person(&self) -> Option<String> {
        self.as_ref().and_then(Person::person)
    }
}

/// A value that names groups: what `candidates data.field;` and `escalate .. to
/// candidates ..;` read.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot name groups",
    label = "a task's candidate groups are read from a `String`, a `&str`, or an `Option`, `Vec`, slice, array or set of them",
    note = "give the data a field of type `Vec<String>` for the groups"
)]
pub trait Groups {
    /// Appends the groups this value names; empty names are skipped.
    fn groups(&self, out: &mut Vec<String>);
}

impl Groups for str {
    fn groups(&self, out: &mut Vec<String>) {
        if !self.is_empty() {
            out.push(self.to_owned());
        }
    }
}

impl Groups for String {
    fn groups(&self, out: &mut Vec<String>) {
        self.as_str().groups(out);
    }
}

impl<T: Groups + ?Sized> Groups for &T {
    fn groups(&self, out: &mut Vec<String>) {
        (**self).groups(out);
    }
}

impl<T: Groups> Groups for Option<T> {
    fn groups(&self, out: &mut Vec<String>) {
        if let Some(value) = self {
            value.groups(out);
        }
    }
}

impl<T: Groups> Groups for [T] {
    fn groups(&self, out: &mut Vec<String>) {
        for value in self {
            value.groups(out);
        }
    }
}

impl<T: Groups, const N: usize> Groups for [T; N] {
    fn groups(&self, out: &mut Vec<String>) {
        self.as_slice().groups(out);
    }
}

impl<T: Groups> Groups for Vec<T> {
    fn groups(&self, out: &mut Vec<String>) {
        self.as_slice().groups(out);
    }
}

impl<T: Groups> Groups for BTreeSet<T> {
    fn groups(&self, out: &mut Vec<String>) {
        for value in self {
            value.groups(out);
        }
    }
}

/// A hash set's order changes from run to run: its groups are sorted.
impl<T: Groups, S> Groups for HashSet<T, S> {
    fn groups(&self, out: &mut Vec<String>) {
        let mut these = Vec::new();
        for value in self {
            value.groups(&mut these);
        }
        these.sort_unstable();
        out.extend(these);
    }
}
