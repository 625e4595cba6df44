//! Names: how the table's names become generated names, and how lists of them are
//! written in messages.

use syn::Ident;

/// "`a`, `b`, `c`"
pub(crate) fn quoted_list<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|item| format!("`{item}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The name without a leading `r#`.
pub(crate) fn unraw(ident: &Ident) -> String {
    let text = ident.to_string();
    match text.strip_prefix("r#") {
        Some(rest) => rest.to_owned(),
        None => text,
    }
}

/// The payload type's name for an event (`cancel_order` -> `CancelOrder`), if that is a
/// valid identifier (`__` and `self_` do not give one).
pub(crate) fn event_type_name(event: &Ident) -> Option<Ident> {
    let mut ident: Ident = syn::parse_str(&upper_camel_case(&unraw(event))).ok()?;
    ident.set_span(event.span());
    Some(ident)
}

/// `cancel_order` -> `CancelOrder`.
pub(crate) fn upper_camel_case(name: &str) -> String {
    heck::AsUpperCamelCase(name).to_string()
}

/// `OrderLifecycle` -> `order_lifecycle`; `HTTPServer` -> `http_server`.
pub(crate) fn snake_case(name: &str) -> String {
    heck::AsSnakeCase(name).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_conversions_follow_rust_naming() {
        assert_eq!(upper_camel_case("cancel_order"), "CancelOrder");
        assert_eq!(upper_camel_case("ship"), "Ship");
        assert_eq!(upper_camel_case("retry_2"), "Retry2");
        assert_eq!(snake_case("OrderLifecycle"), "order_lifecycle");
        assert_eq!(snake_case("Order"), "order");
        assert_eq!(snake_case("HTTPServer"), "http_server");
        assert_eq!(snake_case("OrderV2"), "order_v2");
    }
}
