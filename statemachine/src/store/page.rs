//! Reading a long list or history one page at a time: [`Cursor`] and [`Page`].

use super::StoreError;
use crate::InstanceId;

/// How many rows [`Store::list`] and [`Store::history`] read at a time.
pub(crate) const PAGE: usize = 1_000;

/// Reads pages until the last one.
pub(crate) fn collect_pages<T>(
    mut page: impl FnMut(Option<&Cursor>) -> Result<Page<T>, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut items = Vec::new();
    let mut after = None;
    loop {
        let Page { items: more, next } = page(after.as_ref())?;
        items.extend(more);
        match next {
            Some(next) => after = Some(next),
            None => return Ok(items),
        }
    }
}

/// Where the next page of a listing starts. Opaque: pass back the `next` of the page
/// before. It is plain text ([`as_str`](Self::as_str), `From<String>`), so it can travel
/// through a URL or a message and come back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cursor(String);

impl Cursor {
    /// The cursor as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for Cursor {
    fn from(text: String) -> Self {
        Self(text)
    }
}

impl From<&str> for Cursor {
    fn from(text: &str) -> Self {
        Self(text.to_owned())
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Page<T> {
    /// What is on the page, in the listing's order.
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

impl<T> Page<T> {
    /// A page of `items`, followed by the page at `next`.
    pub fn new(items: Vec<T>, next: Option<Cursor>) -> Self {
        Self { items, next }
    }
}

/// A history cursor: the position of the last record on the page before.
pub(crate) fn position_after(after: Option<&Cursor>) -> Result<Option<u64>, StoreError> {
    after
        .map(|cursor| {
            cursor
                .0
                .strip_prefix('p')
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| StoreError::InvalidCursor {
                    cursor: cursor.0.clone(),
                })
        })
        .transpose()
}

/// The history cursor after the record at `position`.
pub(crate) fn position_cursor(position: u64) -> Cursor {
    Cursor(format!("p{position}"))
}

/// A list cursor: the id of the last instance on the page before.
pub(crate) fn id_after(after: Option<&Cursor>) -> Result<Option<&str>, StoreError> {
    after
        .map(|cursor| {
            cursor
                .0
                .strip_prefix('i')
                .ok_or_else(|| StoreError::InvalidCursor {
                    cursor: cursor.0.clone(),
                })
        })
        .transpose()
}

/// The list cursor after the instance `id`.
pub(crate) fn id_cursor(id: &InstanceId) -> Cursor {
    Cursor(format!("i{id}"))
}
