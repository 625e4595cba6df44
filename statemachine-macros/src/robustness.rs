//! The macro never panics: property tests that feed it random token soup and mutated
//! valid tables, and require well-formed Rust back every time (either the machine's
//! items or `compile_error!`s with stubs).

use std::str::FromStr;

use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};
use proptest::prelude::*;

/// A token tree as text, so strategies can build and mutate it.
#[derive(Clone, Debug)]
enum Node {
    /// One token; `joint` glues it to the next (`=` `>` in `=>`).
    Leaf { text: String, joint: bool },
    /// A delimited group.
    Group(char, Vec<Node>),
}

fn render(nodes: &[Node]) -> String {
    let mut out = String::new();
    for node in nodes {
        match node {
            Node::Leaf { text, joint } => {
                out.push_str(text);
                if !joint {
                    out.push(' ');
                }
            }
            Node::Group(open, inner) => {
                let close = match open {
                    '(' => ')',
                    '[' => ']',
                    _ => '}',
                };
                out.push(*open);
                out.push_str(&render(inner));
                out.push(close);
                out.push(' ');
            }
        }
    }
    out
}

fn to_nodes(tokens: TokenStream) -> Vec<Node> {
    tokens
        .into_iter()
        .map(|tt| match tt {
            TokenTree::Group(group) => {
                let open = match group.delimiter() {
                    Delimiter::Parenthesis => '(',
                    Delimiter::Bracket => '[',
                    _ => '{',
                };
                Node::Group(open, to_nodes(group.stream()))
            }
            TokenTree::Punct(punct) => Node::Leaf {
                text: punct.as_char().to_string(),
                joint: punct.spacing() == Spacing::Joint,
            },
            other => Node::Leaf {
                text: other.to_string(),
                joint: false,
            },
        })
        .collect()
}

/// Words and symbols the table uses, plus troublemakers.
const VOCABULARY: &[&str] = &[
    "machine",
    "version",
    "reason",
    "state",
    "initial",
    "final",
    "event",
    "entry",
    "exit",
    "after",
    "pivot",
    "readonly",
    "via",
    "saga",
    "step",
    "compensate",
    "pub",
    "Order",
    "Pending",
    "Confirmed",
    "Shipped",
    "AnyOrder",
    "OrderEvent",
    "confirm",
    "ship",
    "deliver",
    "data",
    "new",
    "self_",
    "Self",
    "r#type",
    "__",
    "_x",
    "String",
    "u32",
    "Vec",
    "+",
    "|",
    "=>",
    "/",
    ";",
    ",",
    ":",
    "::",
    "<",
    ">",
    "#",
    "!",
    "&",
    "'a",
    "0",
    "1",
    "1u8",
    "4294967296",
    "\"x\"",
    "48h",
    "wait",
    "30m",
    "1.5h",
    "-",
    "0s",
    "2w",
    "payment_window",
    "task",
    "assignee",
    "candidates",
    "outcomes",
    "complete",
    "by",
    "admins",
    "due",
    "remind",
    "escalate",
    "to",
    "delegate",
    "keeps",
    "restarts",
    "never",
    "sla",
    ".",
    "superstate",
    "Active",
    "include",
    "uncertain",
];

fn leaf() -> impl Strategy<Value = Node> {
    prop::sample::select(VOCABULARY).prop_map(|text| Node::Leaf {
        text: text.to_owned(),
        joint: false,
    })
}

fn soup() -> impl Strategy<Value = Vec<Node>> {
    let node = leaf().prop_recursive(4, 64, 8, |inner| {
        (
            prop::sample::select(vec!['(', '[', '{']),
            prop::collection::vec(inner, 0..8),
        )
            .prop_map(|(open, nodes)| Node::Group(open, nodes))
    });
    prop::collection::vec(node, 0..24)
}

/// Valid tables to mutate, as a header and items: small, guarded, multi-source, with
/// data and hooks.
const TABLES: &[(&str, &[&str])] = &[
    (
        "pub machine Order(OrderData)",
        &[
            "version 1;",
            "reason Refusal;",
            "/// Waiting.\n initial state Pending;",
            "state Confirmed { payment_id: String } entry(on_confirmed) exit(on_left);",
            "state Shipped { payment_id: String, tracking: String }",
            "final state Delivered;",
            "final state Cancelled { reason: String }",
            "event confirm { payment_id: String }",
            "event ship { tracking: String }",
            "event deliver;",
            "event cancel { reason: String }",
            "Pending + confirm => Confirmed;",
            "/// Only in stock.\n Confirmed + ship [in_stock] => Shipped;",
            "Shipped + deliver => Delivered;",
            "Pending | Confirmed + cancel / refund => Cancelled;",
            "superstate Active { Pending, Confirmed } entry(on_active) exit(on_inactive);",
            "superstate Open { Active, Shipped }",
            "Open + hold => Pending;",
            "event hold;",
        ],
    ),
    (
        "pub saga Fulfilment(Order, Services)",
        &[
            "version 1;",
            "/// Checks.\n readonly step check_address;",
            "uncertain step reserve / release via inventory;",
            "step payments::charge / payments::refund via payments;",
            "include fragments::Shipping;",
            "pivot step ship;",
            "step notify via email;",
        ],
    ),
    (
        "pub machine Payment(PaymentData)",
        &[
            "version 2;",
            "initial state Pending { amount: u64 } exit(left);",
            "/// Waits.\n wait state Awaiting { amount: u64 } entry(arrived);",
            "state Escalated { amount: u64 }",
            "final state Paid;",
            "final state Expired;",
            "event submit;",
            "event pay;",
            "Pending + submit => Awaiting;",
            "Pending + after payment_window => Expired;",
            "Awaiting + pay => Paid;",
            "Awaiting after 20m / remind;",
            "/// Big ones.\n Awaiting + after 48h [is_big] / escalate => Escalated;",
            "Awaiting + after 48h => Expired;",
            "Escalated | Awaiting after 1d / remind;",
            "Escalated + after 7d => Expired;",
        ],
    ),
    (
        "pub machine Expense(ExpenseData)",
        &[
            "version 1;",
            "initial state Draft;",
            "state Review { approvers: Vec<String> }",
            "state Finance;",
            "final state Approved;",
            "final state Rejected;",
            "event submit { approvers: Vec<String> }",
            "event approve;",
            "event reject;",
            "Draft + submit => Review;",
            "Review + approve => Finance;",
            "Review | Finance + reject => Rejected;",
            "Finance + approve => Approved;",
            "Finance + after 5d => Rejected;",
            "task Review { assignee data.manager; candidates \"managers\", state.approvers; \
             outcomes approve, reject; admins \"root\"; due 1d; remind after 20h; \
             escalate after 2d to assignee data.director; \
             escalate after 3d to candidates groups_of; delegate keeps sla; }",
            "task Finance { candidates \"finance\"; outcomes approve, reject; \
             complete by assignee, candidates; due finance_due; delegate never; }",
        ],
    ),
    (
        "machine Light",
        &[
            "version 3;",
            "initial state Off;",
            "state On;",
            "event toggle;",
            "Off + toggle => On;",
            "On + toggle [cool] => Off;",
            "On + toggle => On;",
        ],
    ),
];

/// An edit to the list of items.
#[derive(Clone, Debug)]
enum ItemEdit {
    Delete(usize),
    Duplicate(usize),
    Swap(usize, usize),
    /// Applies a token-level mutation inside one item.
    Tokens(usize, Mutation),
}

fn item_edit() -> impl Strategy<Value = ItemEdit> {
    prop_oneof![
        1 => any::<usize>().prop_map(ItemEdit::Delete),
        1 => any::<usize>().prop_map(ItemEdit::Duplicate),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| ItemEdit::Swap(a, b)),
        3 => (any::<usize>(), mutation()).prop_map(|(i, m)| ItemEdit::Tokens(i, m)),
    ]
}

fn edit_items(items: &mut Vec<Vec<Node>>, edit: &ItemEdit) {
    let len = items.len();
    if len == 0 {
        return;
    }
    match edit {
        ItemEdit::Delete(i) => {
            items.remove(i % len);
        }
        ItemEdit::Duplicate(i) => {
            let item = items[i % len].clone();
            items.insert(i % len, item);
        }
        ItemEdit::Swap(a, b) => items.swap(a % len, b % len),
        ItemEdit::Tokens(i, m) => apply(&mut items[i % len], m),
    }
}

fn lex(source: &str) -> Vec<Node> {
    to_nodes(TokenStream::from_str(source).expect("the seed tables lex"))
}

/// One edit to a token tree, chosen by random numbers.
#[derive(Clone, Debug)]
enum Mutation {
    Delete(usize),
    Duplicate(usize),
    Swap(usize),
    Replace(usize, usize),
    Insert(usize, usize),
    /// Copies a run of up to 12 nodes (often a whole item) to another place.
    CopyRun(usize, usize, usize),
    /// Deletes a run of up to 12 nodes.
    DeleteRun(usize, usize),
    /// Applies the inner mutation inside the n-th group.
    Descend(usize, Box<Mutation>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let flat = prop_oneof![
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Duplicate),
        any::<usize>().prop_map(Mutation::Swap),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Replace(a, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Insert(a, b)),
        (any::<usize>(), 1..12usize, any::<usize>())
            .prop_map(|(a, n, b)| Mutation::CopyRun(a, n, b)),
        (any::<usize>(), 1..12usize).prop_map(|(a, n)| Mutation::DeleteRun(a, n)),
    ];
    flat.prop_recursive(3, 8, 1, |inner| {
        (any::<usize>(), inner).prop_map(|(n, m)| Mutation::Descend(n, Box::new(m)))
    })
}

fn apply(nodes: &mut Vec<Node>, mutation: &Mutation) {
    let word = |i: usize| Node::Leaf {
        text: VOCABULARY[i % VOCABULARY.len()].to_owned(),
        joint: false,
    };
    let len = nodes.len();
    match mutation {
        Mutation::Insert(at, w) => nodes.insert(at % (len + 1), word(*w)),
        _ if len == 0 => {}
        Mutation::Delete(at) => {
            nodes.remove(at % len);
        }
        Mutation::Duplicate(at) => {
            let node = nodes[at % len].clone();
            nodes.insert(at % len, node);
        }
        Mutation::Swap(at) => {
            let at = at % len;
            nodes.swap(at, (at + 1) % len);
        }
        Mutation::Replace(at, w) => nodes[at % len] = word(*w),
        Mutation::CopyRun(at, n, to) => {
            let start = at % len;
            let run: Vec<Node> = nodes[start..(start + n).min(len)].to_vec();
            let to = to % (len + 1);
            nodes.splice(to..to, run);
        }
        Mutation::DeleteRun(at, n) => {
            let start = at % len;
            nodes.drain(start..(start + n).min(len));
        }
        Mutation::Descend(n, inner) => {
            let groups: Vec<usize> = (0..len)
                .filter(|&i| matches!(nodes[i], Node::Group(..)))
                .collect();
            if let Some(&index) = groups.get(n % groups.len().max(1))
                && let Node::Group(_, children) = &mut nodes[index]
            {
                apply(children, inner);
            }
        }
    }
}

/// Runs the macro and returns its output, which must be valid Rust items.
fn expand_to_file(source: &str) -> (String, syn::File) {
    let input = TokenStream::from_str(source).expect("rendered token trees always lex");
    let output = crate::expand::state_machine(input).unwrap_or_else(syn::Error::into_compile_error);
    let text = output.to_string();
    let file = syn::parse2::<syn::File>(output)
        .unwrap_or_else(|e| panic!("the macro produced invalid Rust ({e}) for input:\n{source}"));
    (text, file)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_token_soup_is_rejected_without_panicking(nodes in soup()) {
        let source = render(&nodes);
        let (output, _) = expand_to_file(&source);
        if !source.contains("machine") {
            prop_assert!(output.contains("compile_error"), "accepted: {source}");
        }
    }

    #[test]
    fn mutated_tables_never_panic(
        (header, items) in prop::sample::select(TABLES),
        edits in prop::collection::vec(item_edit(), 1..6),
        header_edit in prop::option::weighted(0.1, mutation()),
    ) {
        let mut items: Vec<Vec<Node>> = items.iter().map(|item| lex(item)).collect();
        for edit in &edits {
            edit_items(&mut items, edit);
        }
        let mut nodes = lex(header);
        nodes.push(Node::Group('{', items.concat()));
        if let Some(m) = &header_edit {
            apply(&mut nodes, m);
        }
        let source = render(&nodes);
        let _ = expand_to_file(&source);
    }
}

#[test]
fn every_seed_table_expands_without_errors() {
    for (header, items) in TABLES {
        let (output, file) = expand_to_file(&format!("{header} {{ {} }}", items.join("\n")));
        assert!(!output.contains("compile_error"), "{output}");
        assert!(file.items.len() >= 2, "{output}");
    }
}

#[test]
fn rendering_keeps_joint_punctuation() {
    let nodes = to_nodes(TokenStream::from_str("A + b => C;").expect("lexes"));
    assert_eq!(render(&nodes).trim(), "A + b => C ;");
}
