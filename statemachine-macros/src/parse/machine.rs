//! A machine's table: states, events, transitions, `version`, `reason`, `migrate from`.

use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Attribute, Field, Ident, LitInt, Path, Token, Type, Visibility, token};

use super::migrate::{MigrateDecl, parse_migrate};
use super::superstate::SuperstateDecl;
use super::task::{TaskDecl, parse_task};
use super::timer::{DeadlineDecl, ReminderDecl, parse_line};
use super::{edit_distance, expect_semicolon, inside, kw, parse_guard_action, skip_past_semicolon};

/// The words that may start an item, for "unknown item" messages.
const ITEM_KEYWORDS: &[&str] = &[
    "version",
    "reason",
    "state",
    "initial",
    "final",
    "wait",
    "event",
    "migrate",
    "task",
    "superstate",
];

/// Keywords held for features that are designed but not built yet.
const RESERVED_ITEMS: &[(&str, &str)] = &[("compensate", "compensations")];

/// A machine's table.
pub(crate) struct MachineSyntax {
    /// Outer attributes and doc comments written before `machine`.
    pub attrs: Vec<Attribute>,
    /// Visibility of the generated items.
    pub vis: Visibility,
    /// The `machine` keyword, for errors about the machine as a whole.
    pub machine_token: kw::machine,
    /// The machine's name (`Order`).
    pub name: Ident,
    /// The shared data type in parentheses, if any (`(OrderData)`).
    pub data: Option<Type>,
    /// The items of the table that parsed.
    pub items: Vec<Item>,
    /// Syntax errors found inside the table.
    pub errors: Vec<syn::Error>,
}

/// One item of the table.
pub(crate) enum Item {
    /// `version 1;`
    Version(VersionDecl),
    /// `reason MyReason;`
    Reason(ReasonDecl),
    /// `initial state Pending;`, `state Confirmed { payment_id: String }`
    State(StateDecl),
    /// `event ship { tracking: String }`
    Event(EventDecl),
    /// `Pending | Confirmed + cancel [guard] / action => Cancelled;`
    Transition(TransitionDecl),
    /// `migrate from v1::Order { Pending => Pending; .. }`
    Migrate(MigrateDecl),
    /// `Pending + after 30m [guard] / action => Expired;`
    Deadline(DeadlineDecl),
    /// `AwaitingPayment after 20m / remind;`
    Reminder(ReminderDecl),
    /// `task Review { candidates "managers"; .. }`
    Task(TaskDecl),
    /// `superstate Active { Pending, Confirmed } exit(log_leaving);`
    Superstate(SuperstateDecl),
}

/// `version N;`
pub(crate) struct VersionDecl {
    /// Attributes written before the item (none are allowed).
    pub attrs: Vec<Attribute>,
    /// The `version` keyword.
    pub keyword: kw::version,
    /// The number as written.
    pub value: LitInt,
}

/// `reason Type;`
pub(crate) struct ReasonDecl {
    /// Attributes written before the item (none are allowed).
    pub attrs: Vec<Attribute>,
    /// The `reason` keyword.
    pub keyword: kw::reason,
    /// The type guards refuse with.
    pub ty: Type,
}

/// A state declaration.
pub(crate) struct StateDecl {
    /// Doc comments and attributes; they flow onto the generated state type.
    pub attrs: Vec<Attribute>,
    /// The `initial` modifier, if written.
    pub initial: Option<kw::initial>,
    /// The `final` modifier, if written.
    pub final_token: Option<Token![final]>,
    /// The `wait` modifier, if written.
    pub wait: Option<kw::wait>,
    /// The state's name.
    pub name: Ident,
    /// The state's own data.
    pub fields: Vec<Field>,
    /// `entry(path)` and `exit(path)` clauses, in the order written.
    pub hooks: Vec<HookDecl>,
}

/// Which hook a clause declares.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(Debug))]
pub(crate) enum HookKind {
    /// Runs after the machine enters the state.
    Entry,
    /// Runs before the machine leaves the state.
    Exit,
}

/// `entry(path)` or `exit(path)` on a state.
pub(crate) struct HookDecl {
    /// Which hook.
    pub kind: HookKind,
    /// The clause keyword, for duplicate errors.
    pub keyword: Ident,
    /// The hook function.
    pub path: Path,
}

/// An event declaration.
pub(crate) struct EventDecl {
    /// Doc comments and attributes; they flow onto the generated payload type.
    pub attrs: Vec<Attribute>,
    /// The event's name (`ship`).
    pub name: Ident,
    /// The event's payload.
    pub fields: Vec<Field>,
}

/// A transition line.
pub(crate) struct TransitionDecl {
    /// Doc comments (only docs are allowed); they flow onto the generated method.
    pub attrs: Vec<Attribute>,
    /// The source states, in the order written.
    pub sources: Vec<Ident>,
    /// The event.
    pub event: Ident,
    /// `[guard]`, if written.
    pub guard: Option<Path>,
    /// `/ action`, if written.
    pub action: Option<Path>,
    /// The `=>` token, for errors about the transition as a whole.
    pub arrow: Token![=>],
    /// The target state.
    pub target: Ident,
}

impl Parse for MachineSyntax {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        let machine_token: kw::machine = input.parse().map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected `machine`: a table starts with `machine Name(Data) { ... }`",
            )
        })?;
        let name: Ident = input.parse().map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected the machine's name, like `machine Order`",
            )
        })?;
        let data = if input.peek(token::Paren) {
            let content;
            syn::parenthesized!(content in input);
            Some(inside(&content, |content| {
                if content.is_empty() {
                    return Err(content.error(
                        "expected the shared data type, like `(OrderData)`; \
                         leave out the parentheses for a machine without shared data",
                    ));
                }
                let ty: Type = content.parse()?;
                if !content.is_empty() {
                    return Err(content.error("expected one shared data type, like `(OrderData)`"));
                }
                Ok(ty)
            })?)
        } else {
            None
        };
        if !input.peek(token::Brace) {
            return Err(input.error(format!(
                "expected `{{` after `machine {name}`, or `(Data)` for the shared data"
            )));
        }
        let content;
        syn::braced!(content in input);
        if !input.is_empty() {
            return Err(input.error(
                "unexpected tokens after the machine's table; write one machine per `state_machine!`",
            ));
        }
        let mut items = Vec::new();
        let mut errors = Vec::new();
        while !content.is_empty() {
            match content.call(parse_item) {
                Ok(mut item) => {
                    // A task's clauses recover from their own syntax errors; they count
                    // as the table's.
                    if let Item::Task(task) = &mut item {
                        errors.append(&mut task.errors);
                    }
                    items.push(item);
                }
                Err(error) => {
                    errors.push(error);
                    skip_past_semicolon(&content)?;
                }
            }
        }
        Ok(Self {
            attrs,
            vis,
            machine_token,
            name,
            data,
            items,
            errors,
        })
    }
}
fn parse_item(input: ParseStream) -> syn::Result<Item> {
    let attrs = input.call(Attribute::parse_outer)?;
    let lookahead = input.lookahead1();
    if lookahead.peek(kw::version) {
        let keyword = input.parse()?;
        let value = input.parse().map_err(|e| {
            syn::Error::new(e.span(), "expected a version number, like `version 1;`")
        })?;
        expect_semicolon(input, "after the version number")?;
        Ok(Item::Version(VersionDecl {
            attrs,
            keyword,
            value,
        }))
    } else if lookahead.peek(kw::reason) {
        let keyword = input.parse()?;
        let ty = input.parse()?;
        expect_semicolon(input, "after the reason type")?;
        Ok(Item::Reason(ReasonDecl { attrs, keyword, ty }))
    } else if lookahead.peek(kw::initial)
        || lookahead.peek(Token![final])
        || lookahead.peek(kw::state)
        || (input.peek(kw::wait)
            && !(input.peek2(Token![+]) || input.peek2(Token![|]) || input.peek2(kw::after)))
    {
        parse_state(input, attrs).map(Item::State)
    } else if lookahead.peek(kw::event) {
        parse_event(input, attrs).map(Item::Event)
    } else if lookahead.peek(kw::migrate) {
        parse_migrate(input, attrs).map(Item::Migrate)
    } else if input.peek(kw::task) && input.peek2(Ident) {
        parse_task(input, attrs).map(Item::Task)
    } else if input.peek(kw::superstate)
        && !(input.peek2(Token![+]) || input.peek2(Token![|]) || input.peek2(kw::after))
    {
        super::superstate::parse_superstate(input, attrs).map(Item::Superstate)
    } else if input.peek(Ident)
        && (input.peek2(Token![+]) || input.peek2(Token![|]) || input.peek2(kw::after))
    {
        parse_line(input, attrs)
    } else if input.peek(Ident) {
        Err(unknown_item(input))
    } else {
        Err(syn::Error::new(
            input.span(),
            "expected an item: `version`, `reason`, `state`, `initial state`, `final state`, \
             `event`, `migrate from`, or a transition like `Pending + confirm => Confirmed;`",
        ))
    }
}

/// The error for an item that starts with a word the table does not know.
fn unknown_item(input: ParseStream) -> syn::Error {
    let Ok(word) = input.fork().parse::<Ident>() else {
        return input.error("expected an item");
    };
    let text = word.to_string();
    if let Some((_, feature)) = RESERVED_ITEMS.iter().find(|(kw, _)| *kw == text) {
        return syn::Error::new(
            word.span(),
            format!("`{text}` is reserved for {feature}, which are not supported yet"),
        );
    }
    if text == "saga" || text == "step" {
        return syn::Error::new(
            word.span(),
            "a saga is a table of its own: write `state_machine! { saga Name(Data) { step ..; } }`",
        );
    }
    if input.peek2(token::Brace) || input.peek2(Token![;]) {
        return syn::Error::new(
            word.span(),
            format!("unknown item `{text}`; to declare a state, write `state {text}`"),
        );
    }
    let suggestion = ITEM_KEYWORDS
        .iter()
        .filter(|kw| edit_distance(kw, &text) <= 2)
        .min_by_key(|kw| edit_distance(kw, &text));
    let mut message = format!(
        "unknown item `{text}`; expected `version`, `reason`, `state`, `initial state`, \
         `final state`, `superstate`, `event`, `migrate from`, or a transition like \
         `Pending + confirm => Confirmed;`"
    );
    if let Some(kw) = suggestion {
        message = format!("unknown item `{text}`, did you mean `{kw}`?");
    }
    syn::Error::new(word.span(), message)
}

fn parse_state(input: ParseStream, attrs: Vec<Attribute>) -> syn::Result<StateDecl> {
    let mut initial: Option<kw::initial> = None;
    let mut final_token: Option<Token![final]> = None;
    let mut wait: Option<kw::wait> = None;
    loop {
        if input.peek(kw::initial) {
            let token: kw::initial = input.parse()?;
            if initial.is_some() {
                return Err(syn::Error::new(token.span, "`initial` is written twice"));
            }
            initial = Some(token);
        } else if input.peek(Token![final]) {
            let token: Token![final] = input.parse()?;
            if final_token.is_some() {
                return Err(syn::Error::new(token.span, "`final` is written twice"));
            }
            final_token = Some(token);
        } else if input.peek(kw::wait) {
            let token: kw::wait = input.parse()?;
            if wait.is_some() {
                return Err(syn::Error::new(token.span, "`wait` is written twice"));
            }
            wait = Some(token);
        } else {
            break;
        }
    }
    if !input.peek(kw::state) {
        return Err(input.error("expected `state` after `initial`, `final` or `wait`"));
    }
    input.parse::<kw::state>()?;
    let name: Ident = input.parse().map_err(|e| {
        syn::Error::new(e.span(), "expected the state's name, like `state Pending`")
    })?;
    let fields = parse_fields(input)?;
    let hooks = parse_hooks(input, &name)?;
    if input.peek(Token![;]) {
        input.parse::<Token![;]>()?;
    } else if fields.is_none() || !hooks.is_empty() {
        return Err(input.error(format!(
            "expected `;` to end state `{name}`, or a clause: `{{ fields }}`, `entry(hook)`, `exit(hook)`"
        )));
    }
    Ok(StateDecl {
        attrs,
        initial,
        final_token,
        wait,
        name,
        fields: fields.unwrap_or_default(),
        hooks,
    })
}

/// The `entry(hook)` and `exit(hook)` clauses after a state or a superstate named `name`.
pub(super) fn parse_hooks(input: ParseStream, name: &Ident) -> syn::Result<Vec<HookDecl>> {
    let mut hooks = Vec::new();
    loop {
        if input.peek(kw::entry) || input.peek(kw::exit) {
            let keyword: Ident = input.parse()?;
            let kind = if keyword == "entry" {
                HookKind::Entry
            } else {
                HookKind::Exit
            };
            let content;
            syn::parenthesized!(content in input);
            let path = inside(&content, |content| {
                let path = content.call(Path::parse_mod_style).map_err(|e| {
                    syn::Error::new(
                        e.span(),
                        format!("expected a hook function, like `{keyword}(notify_customer)`"),
                    )
                })?;
                if !content.is_empty() {
                    return Err(content.error(format!(
                        "expected one hook function, like `{keyword}(notify_customer)`"
                    )));
                }
                Ok(path)
            })?;
            hooks.push(HookDecl {
                kind,
                keyword,
                path,
            });
        } else if input.peek(kw::after) {
            let keyword: kw::after = input.parse()?;
            return Err(syn::Error::new(
                keyword.span,
                format!(
                    "a timer is an item of its own: a deadline is a transition, like \
                     `{name} + after 48h => Target;`, and a reminder is \
                     `{name} after 48h / action;`"
                ),
            ));
        } else if let Some(clause) = misspelt_clause(input) {
            return Err(clause);
        } else {
            break;
        }
    }
    Ok(hooks)
}

/// A word after a state that is close to a clause keyword (`enter(..)`), as an error.
fn misspelt_clause(input: ParseStream) -> Option<syn::Error> {
    let word = input.fork().parse::<Ident>().ok()?;
    let text = word.to_string();
    let clause = ["entry", "exit"]
        .into_iter()
        .find(|clause| edit_distance(clause, &text) <= 2)?;
    Some(syn::Error::new(
        word.span(),
        format!("unknown clause `{text}`, did you mean `{clause}`?"),
    ))
}

fn parse_event(input: ParseStream, attrs: Vec<Attribute>) -> syn::Result<EventDecl> {
    input.parse::<kw::event>()?;
    let name: Ident = input
        .parse()
        .map_err(|e| syn::Error::new(e.span(), "expected the event's name, like `event ship`"))?;
    let fields = parse_fields(input)?;
    if input.peek(Token![;]) {
        input.parse::<Token![;]>()?;
    } else if fields.is_none() {
        return Err(input.error(format!(
            "expected `;` to end event `{name}`, or its payload `{{ field: Type }}`"
        )));
    }
    Ok(EventDecl {
        attrs,
        name,
        fields: fields.unwrap_or_default(),
    })
}

/// `{ name: Type, ... }`, if the next token opens a brace.
fn parse_fields(input: ParseStream) -> syn::Result<Option<Vec<Field>>> {
    if !input.peek(token::Brace) {
        return Ok(None);
    }
    let content;
    syn::braced!(content in input);
    let fields: Punctuated<Field, Token![,]> = inside(&content, |content| {
        content.parse_terminated(parse_field, Token![,])
    })?;
    Ok(Some(fields.into_iter().collect()))
}

/// `name: Type`, with attributes and an optional visibility.
fn parse_field(input: ParseStream) -> syn::Result<Field> {
    let attrs = input.call(Attribute::parse_outer)?;
    let vis: Visibility = input.parse()?;
    let ident: Ident = input.parse().map_err(|e| {
        syn::Error::new(e.span(), "expected a field name, like `payment_id: String`")
    })?;
    let colon_token: Token![:] = input.parse().map_err(|e| {
        syn::Error::new(e.span(), format!("expected `: Type` after field `{ident}`"))
    })?;
    let ty: Type = input.parse()?;
    Ok(Field {
        attrs,
        vis,
        modifiers: syn::FieldModifiers::default(),
        ident: Some(ident),
        colon_token: Some(colon_token),
        ty,
        default: None,
    })
}

/// The rest of a transition, after its sources and `+`.
pub(super) fn parse_transition_rest(
    input: ParseStream,
    attrs: Vec<Attribute>,
    sources: Vec<Ident>,
) -> syn::Result<TransitionDecl> {
    let event: Ident = input.parse().map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected an event name after `+`, like `Pending + confirm`",
        )
    })?;
    let (guard, action) = parse_guard_action(input)?;
    let arrow: Token![=>] = input.parse().map_err(|e| {
        syn::Error::new(
            e.span(),
            format!(
                "expected `=>` and the target state, like `{} + {event} => Target;`; \
                 a guard goes in `[..]` and an action after `/`, before `=>`",
                sources.first().map(Ident::to_string).unwrap_or_default()
            ),
        )
    })?;
    let target: Ident = input
        .parse()
        .map_err(|e| syn::Error::new(e.span(), "expected the target state after `=>`"))?;
    expect_semicolon(input, &format!("after `=> {target}`"))?;
    Ok(TransitionDecl {
        attrs,
        sources,
        event,
        guard,
        action,
        arrow,
        target,
    })
}
