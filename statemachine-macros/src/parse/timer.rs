//! Timers in a machine's table: deadlines (`Pending + after 30m => Expired;`) and
//! reminders (`AwaitingPayment after 20m / remind;`). `wait state` is parsed with the
//! other state modifiers, in `machine`.

use syn::parse::ParseStream;
use syn::{Attribute, Ident, Lit, Path, Token, token};

use super::machine::{Item, parse_transition_rest};
use super::{expect_semicolon, kw, parse_guard_action};

/// `after 30m` or `after payment_window`.
pub(crate) struct AfterDecl {
    /// The `after` keyword.
    pub keyword: kw::after,
    /// When the timer comes due.
    pub time: AfterTime,
}

/// What follows `after`, as written.
pub(crate) enum AfterTime {
    /// A literal (`30m`, `1.5h`, `-5m`): units and values are checked when lowering, so
    /// one table reports every bad duration.
    Literal {
        /// A leading `-`.
        minus: Option<Token![-]>,
        /// The literal.
        lit: Lit,
    },
    /// A function of the data and the state that gives the due time.
    Function(Path),
}

/// `Pending | Confirmed + after 48h [guard] / action => Escalated;`
pub(crate) struct DeadlineDecl {
    /// Doc comments (only docs are allowed).
    pub attrs: Vec<Attribute>,
    /// The source states, in the order written.
    pub sources: Vec<Ident>,
    /// When the deadline comes due.
    pub after: AfterDecl,
    /// `[guard]`, if written.
    pub guard: Option<Path>,
    /// `/ action`, if written.
    pub action: Option<Path>,
    /// The target state.
    pub target: Ident,
}

/// `AwaitingPayment after 20m / remind;`
pub(crate) struct ReminderDecl {
    /// Doc comments (only docs are allowed).
    pub attrs: Vec<Attribute>,
    /// The states that arm it, in the order written.
    pub sources: Vec<Ident>,
    /// When the reminder comes due.
    pub after: AfterDecl,
    /// The action it runs.
    pub action: Path,
}

/// A line that starts with state names: a transition, a deadline or a reminder.
pub(super) fn parse_line(input: ParseStream, attrs: Vec<Attribute>) -> syn::Result<Item> {
    let mut sources = vec![input.parse::<Ident>()?];
    while input.peek(Token![|]) {
        input.parse::<Token![|]>()?;
        sources.push(
            input
                .parse()
                .map_err(|e| syn::Error::new(e.span(), "expected a source state after `|`"))?,
        );
    }
    if input.peek(kw::after) {
        return parse_reminder(input, attrs, sources).map(Item::Reminder);
    }
    input.parse::<Token![+]>()?;
    if input.peek(kw::after) {
        return parse_deadline(input, attrs, sources).map(Item::Deadline);
    }
    parse_transition_rest(input, attrs, sources).map(Item::Transition)
}

pub(super) fn parse_after(input: ParseStream) -> syn::Result<AfterDecl> {
    let keyword: kw::after = input.parse()?;
    let time = parse_time(input)?;
    Ok(AfterDecl { keyword, time })
}

/// A duration literal or a function that gives the time: what follows `after` or `due`.
pub(super) fn parse_time(input: ParseStream) -> syn::Result<AfterTime> {
    if input.peek(token::Paren) {
        Err(input.error("write the time without parentheses, like `after 48h`"))
    } else if input.peek(Token![-]) && input.peek2(Lit) {
        let minus = Some(input.parse()?);
        Ok(AfterTime::Literal {
            minus,
            lit: input.parse()?,
        })
    } else if input.peek(Lit) {
        Ok(AfterTime::Literal {
            minus: None,
            lit: input.parse()?,
        })
    } else {
        Ok(AfterTime::Function(
            input.call(Path::parse_mod_style).map_err(|e| {
                syn::Error::new(
                    e.span(),
                    "expected how long after entering the state, like `after 30m`, or a function \
                 that gives the time, like `after payment_window`",
                )
            })?,
        ))
    }
}

fn parse_deadline(
    input: ParseStream,
    attrs: Vec<Attribute>,
    sources: Vec<Ident>,
) -> syn::Result<DeadlineDecl> {
    let after = parse_after(input)?;
    let (guard, action) = parse_guard_action(input)?;
    input.parse::<Token![=>]>().map_err(|e| {
        syn::Error::new(
            e.span(),
            format!(
                "expected `=>` and the target state, like `{} + after 30m => Expired;`; \
                 a guard goes in `[..]` and an action after `/`, before `=>`",
                sources.first().map(Ident::to_string).unwrap_or_default()
            ),
        )
    })?;
    let target: Ident = input
        .parse()
        .map_err(|e| syn::Error::new(e.span(), "expected the target state after `=>`"))?;
    expect_semicolon(input, &format!("after `=> {target}`"))?;
    Ok(DeadlineDecl {
        attrs,
        sources,
        after,
        guard,
        action,
        target,
    })
}

fn parse_reminder(
    input: ParseStream,
    attrs: Vec<Attribute>,
    sources: Vec<Ident>,
) -> syn::Result<ReminderDecl> {
    let after = parse_after(input)?;
    let first = sources.first().map(Ident::to_string).unwrap_or_default();
    if input.peek(Token![=>]) || input.peek(token::Bracket) {
        return Err(input.error(format!(
            "a deadline is a transition, written with `+`: `{first} + after .. => Target;`; \
             `{first} after .. / action;` is a reminder, which stays in the state"
        )));
    }
    if !input.peek(Token![/]) {
        return Err(input.error(format!(
            "expected `/` and the reminder's action, like `{first} after 20m / remind;`"
        )));
    }
    input.parse::<Token![/]>()?;
    let action = input.call(Path::parse_mod_style).map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected the reminder's action after `/`, like `/ remind`",
        )
    })?;
    expect_semicolon(input, "after the reminder's action")?;
    Ok(ReminderDecl {
        attrs,
        sources,
        after,
        action,
    })
}
