//! A human task on a state: `task Review { assignee data.manager; .. }`.
//!
//! Each clause ends with `;`. A clause that does not parse is recorded and parsing
//! resumes after its `;`, so one table reports every malformed clause at once.

use syn::parse::ParseStream;
use syn::{Attribute, Ident, LitStr, Path, Token, token};

use super::timer::{parse_after, parse_time};
use super::{AfterDecl, AfterTime, edit_distance, expect_semicolon, kw, skip_past_semicolon};

/// The clauses a task may have, for "unknown clause" messages.
const CLAUSES: &[&str] = &[
    "assignee",
    "candidates",
    "outcomes",
    "complete",
    "admins",
    "due",
    "remind",
    "escalate",
    "delegate",
];

/// `task State { clause; .. }`
pub(crate) struct TaskDecl {
    /// Attributes written before the item (none are allowed).
    pub attrs: Vec<Attribute>,
    /// The task's state.
    pub state: Ident,
    /// The clauses that parsed, in the order written.
    pub clauses: Vec<TaskClause>,
    /// Syntax errors inside the braces, moved to the table's when the item is kept.
    pub errors: Vec<syn::Error>,
}

/// Where a person or a group comes from.
#[derive(Clone)]
#[cfg_attr(test, derive(Debug))]
pub(crate) enum Party {
    /// A name written in the table: `"managers"`.
    Literal(LitStr),
    /// A field of the shared data: `data.manager` (the field).
    Data(Ident),
    /// A field of the task state's own data: `state.approver` (the field).
    State(Ident),
    /// A function of the data and the state: `manager_of`.
    Function(Path),
}

impl Party {
    /// As written: `"managers"`, `data.manager`, `manager_of`.
    pub fn text(&self) -> String {
        match self {
            Party::Literal(lit) => format!("{:?}", lit.value()),
            Party::Data(field) => format!("data.{field}"),
            Party::State(field) => format!("state.{field}"),
            Party::Function(path) => crate::render::text(path),
        }
    }
}

/// Whom an escalation hands the task to.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(Debug))]
pub(crate) enum Whom {
    /// A person: `to assignee data.director`.
    Assignee,
    /// Groups: `to candidates "finance-leads"`.
    Candidates,
}

/// What delegation does to the SLA.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(Debug))]
pub(crate) enum DelegationDecl {
    /// `delegate keeps sla;`
    Keeps,
    /// `delegate restarts sla;`
    Restarts,
    /// `delegate never;`
    Never,
}

/// One clause of a task, with the span of its first word.
pub(crate) struct TaskClause {
    /// The clause's first word.
    pub keyword: Ident,
    /// What it says.
    pub kind: ClauseKind,
}

/// What a clause says.
pub(crate) enum ClauseKind {
    /// `assignee data.manager;`
    Assignee(Party),
    /// `candidates "managers", state.team;`
    Candidates(Vec<Party>),
    /// `outcomes approve, reject;`
    Outcomes(Vec<Ident>),
    /// `complete by assignee, candidates;`: the words after `by`.
    CompleteBy(Vec<Ident>),
    /// `admins "finance-admin";`
    Admins(Vec<LitStr>),
    /// `due 1d;`
    Due(AfterTime),
    /// `remind after 20h;`
    Remind(AfterDecl),
    /// `escalate after 2d to assignee data.director;`
    Escalate {
        /// When.
        after: AfterDecl,
        /// A person or groups.
        whom: Whom,
        /// Who, as written.
        parties: Vec<Party>,
    },
    /// `delegate keeps sla;`
    Delegate(DelegationDecl),
}

/// Parses `task State { .. }` after its attributes.
pub(super) fn parse_task(input: ParseStream, attrs: Vec<Attribute>) -> syn::Result<TaskDecl> {
    input.parse::<kw::task>()?;
    let state: Ident = input.parse().map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected the task's state after `task`, like `task Review { .. }`",
        )
    })?;
    if !input.peek(token::Brace) {
        return Err(input.error(format!(
            "expected `{{` and the task's clauses, like `task {state} {{ candidates \"managers\"; outcomes approve; .. }}`"
        )));
    }
    let content;
    syn::braced!(content in input);
    let mut clauses = Vec::new();
    let mut errors = Vec::new();
    while !content.is_empty() {
        match parse_clause(&content) {
            Ok(clause) => clauses.push(clause),
            Err(error) => {
                errors.push(error);
                skip_past_semicolon(&content)?;
            }
        }
    }
    // `task X { .. };` reads like the other items; the `;` is optional.
    if input.peek(Token![;]) {
        input.parse::<Token![;]>()?;
    }
    Ok(TaskDecl {
        attrs,
        state,
        clauses,
        errors,
    })
}

fn parse_clause(input: ParseStream) -> syn::Result<TaskClause> {
    let keyword: Ident = input.call(syn::ext::IdentExt::parse_any).map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected a clause of the task: `assignee`, `candidates`, `outcomes`, `complete by`, \
             `admins`, `due`, `remind after`, `escalate after` or `delegate`",
        )
    })?;
    let word = keyword.to_string();
    let kind = match word.as_str() {
        "assignee" => ClauseKind::Assignee(parse_party(input)?),
        "candidates" => ClauseKind::Candidates(parse_parties(input)?),
        "outcomes" => ClauseKind::Outcomes(parse_list(input, |input| {
            input.parse::<Ident>().map_err(|e| {
                syn::Error::new(
                    e.span(),
                    "expected the events that complete the task, like `outcomes approve, reject;`",
                )
            })
        })?),
        "complete" => {
            if !input.peek(kw::by) {
                return Err(input.error(
                    "expected `by` and who may complete the task, like `complete by assignee, candidates;`",
                ));
            }
            input.parse::<kw::by>()?;
            ClauseKind::CompleteBy(parse_list(input, |input| {
                let who: Ident = input.parse()?;
                if who != "assignee" && who != "candidates" {
                    return Err(syn::Error::new(
                        who.span(),
                        format!(
                            "`{who}` cannot complete a task: write `assignee` or `candidates` \
                             (administrators always may, through `admins`)"
                        ),
                    ));
                }
                Ok(who)
            })?)
        }
        "admins" => ClauseKind::Admins(parse_list(input, |input| {
            input.parse::<LitStr>().map_err(|e| {
                syn::Error::new(
                    e.span(),
                    "expected the administrator roles as strings, like `admins \"finance-admin\";`",
                )
            })
        })?),
        "due" => {
            if input.peek(kw::after) {
                return Err(input.error("write `due 1d;`: the due time is counted from entering the state, without `after`"));
            }
            ClauseKind::Due(parse_time(input)?)
        }
        "remind" => {
            if !input.peek(kw::after) {
                return Err(input.error("expected `after` and the time, like `remind after 20h;`"));
            }
            ClauseKind::Remind(parse_after(input)?)
        }
        "escalate" => {
            if !input.peek(kw::after) {
                return Err(input.error(
                    "expected `after` and the time, like `escalate after 2d to candidates \"leads\";`",
                ));
            }
            let after = parse_after(input)?;
            if !input.peek(kw::to) {
                return Err(input.error(
                    "expected `to` and whom the task goes to: `to assignee data.director` (a \
                     person) or `to candidates \"finance-leads\"` (groups)",
                ));
            }
            input.parse::<kw::to>()?;
            let whom: Ident = input.parse().map_err(|e| {
                syn::Error::new(e.span(), "expected `assignee` or `candidates` after `to`")
            })?;
            let (whom, parties) = if whom == "assignee" {
                (Whom::Assignee, vec![parse_party(input)?])
            } else if whom == "candidates" {
                (Whom::Candidates, parse_parties(input)?)
            } else {
                return Err(syn::Error::new(
                    whom.span(),
                    format!(
                        "expected `assignee` (a person) or `candidates` (groups) after `to`, \
                         like `to candidates {:?}`",
                        whom.to_string()
                    ),
                ));
            };
            ClauseKind::Escalate {
                after,
                whom,
                parties,
            }
        }
        "delegate" => {
            let policy: Ident = input.parse().map_err(|e| {
                syn::Error::new(
                    e.span(),
                    "expected `keeps sla`, `restarts sla` or `never` after `delegate`",
                )
            })?;
            let decl = match policy.to_string().as_str() {
                "never" => DelegationDecl::Never,
                "keeps" | "restarts" => {
                    let sla: Ident = input.parse().map_err(|e| {
                        syn::Error::new(e.span(), format!("expected `sla` after `{policy}`"))
                    })?;
                    if sla != "sla" {
                        return Err(syn::Error::new(
                            sla.span(),
                            format!(
                                "expected `sla` after `{policy}`, like `delegate {policy} sla;`"
                            ),
                        ));
                    }
                    if policy == "keeps" {
                        DelegationDecl::Keeps
                    } else {
                        DelegationDecl::Restarts
                    }
                }
                _ => {
                    return Err(syn::Error::new(
                        policy.span(),
                        "expected `keeps sla`, `restarts sla` or `never` after `delegate`",
                    ));
                }
            };
            ClauseKind::Delegate(decl)
        }
        _ => {
            let suggestion = CLAUSES
                .iter()
                .filter(|c| edit_distance(c, &word) <= 2)
                .min_by_key(|c| edit_distance(c, &word));
            let message = match suggestion {
                Some(clause) => {
                    format!("unknown clause `{word}` in a task, did you mean `{clause}`?")
                }
                None => format!(
                    "unknown clause `{word}` in a task; expected `assignee`, `candidates`, \
                     `outcomes`, `complete by`, `admins`, `due`, `remind after`, `escalate after` \
                     or `delegate`"
                ),
            };
            return Err(syn::Error::new(keyword.span(), message));
        }
    };
    expect_semicolon(input, &format!("after the `{word}` clause"))?;
    Ok(TaskClause { keyword, kind })
}

/// Items separated by `,`, up to the `;`.
fn parse_list<T>(
    input: ParseStream,
    item: impl Fn(ParseStream) -> syn::Result<T>,
) -> syn::Result<Vec<T>> {
    let mut items = vec![item(input)?];
    while input.peek(Token![,]) {
        input.parse::<Token![,]>()?;
        items.push(item(input)?);
    }
    Ok(items)
}

fn parse_parties(input: ParseStream) -> syn::Result<Vec<Party>> {
    parse_list(input, parse_party)
}

/// `"name"`, `data.field`, `state.field` or a function's path.
fn parse_party(input: ParseStream) -> syn::Result<Party> {
    if input.peek(LitStr) {
        return Ok(Party::Literal(input.parse()?));
    }
    if input.peek(kw::state) && input.peek2(Token![.]) {
        input.parse::<kw::state>()?;
        input.parse::<Token![.]>()?;
        return parse_field(input, "state").map(Party::State);
    }
    if input.peek(kw::data) && input.peek2(Token![.]) {
        input.parse::<kw::data>()?;
        input.parse::<Token![.]>()?;
        return parse_field(input, "data").map(Party::Data);
    }
    let path = input.call(Path::parse_mod_style).map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected who: a name like `\"managers\"`, a field like `data.manager` or \
             `state.approver`, or a function of the data and the state",
        )
    })?;
    if input.peek(Token![.]) {
        return Err(syn::Error::new_spanned(
            &path,
            format!(
                "`{}.` is not something a task can read: write `data.field` for a field of the \
                 shared data or `state.field` for one of the state's",
                crate::render::text(&path)
            ),
        ));
    }
    Ok(Party::Function(path))
}

fn parse_field(input: ParseStream, base: &str) -> syn::Result<Ident> {
    input
        .parse::<Ident>()
        .map_err(|e| syn::Error::new(e.span(), format!("expected a field name after `{base}.`")))
}
